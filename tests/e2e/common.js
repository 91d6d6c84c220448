// Shared helpers of the e2e client scripts: the gateway URL and tokens come from the environment
// (set by gateway_e2e_test.cc), REST calls use Node's built-in fetch.
'use strict';

const GATEWAY = process.env.NDX_GATEWAY_URL;      // http://127.0.0.1:<port>
const TOKEN = process.env.NDX_TOKEN;              // a JWT of workspace A
const OTHER_TOKEN = process.env.NDX_OTHER_TOKEN;  // a JWT of workspace B

function fail(message) {
  console.error('FAIL: ' + message);
  process.exit(1);
}

function check(cond, message) {
  if (!cond) fail(message);
}

// A workflow that takes about a second: trigger -> wait -> set -> wait -> set (12 events).
function slowWorkflow(id) {
  const wait = (nid) => ({id: nid, name: 'Wait ' + nid, type: 'wait',
                          parameters: {duration: 250, unit: 'milliseconds'}});
  const set = (nid) => ({id: nid, name: 'Set ' + nid, type: 'set',
                         parameters: {values: [{keyValue: {key: nid, value: 'v'}}]}});
  return {
    id,
    name: 'e2e ' + id,
    nodes: [{id: 't', name: 'Manual Trigger', type: 'manual-trigger', parameters: {}},
            wait('w1'), set('s1'), wait('w2'), set('s2')],
    connections: [
      {id: 'c1', sourceNodeId: 't', sourceOutput: 'main', targetNodeId: 'w1', targetInput: 'main'},
      {id: 'c2', sourceNodeId: 'w1', sourceOutput: 'main', targetNodeId: 's1', targetInput: 'main'},
      {id: 'c3', sourceNodeId: 's1', sourceOutput: 'main', targetNodeId: 'w2', targetInput: 'main'},
      {id: 'c4', sourceNodeId: 'w2', sourceOutput: 'main', targetNodeId: 's2', targetInput: 'main'},
    ],
    settings: {},
  };
}

async function rest(method, path, body, token = TOKEN) {
  const res = await fetch(GATEWAY + path, {
    method,
    headers: {'Content-Type': 'application/json', Authorization: 'Bearer ' + token},
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  return {status: res.status, body: json};
}

async function startRest(workflowId) {
  const r = await rest('POST', '/api/executions',
                       {workflowId, triggerNodeId: 't', workflowData: slowWorkflow(workflowId)});
  check(r.status === 201 && r.body.success, 'POST /api/executions: ' + JSON.stringify(r));
  return r.body.data.executionId;
}

async function waitTerminal(id, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await rest('GET', '/api/executions/' + id);
    if (r.status === 200 && r.body.data.status !== 'RUNNING') return r.body.data;
    await new Promise((ok) => setTimeout(ok, 100));
  }
  fail('execution ' + id + ' did not finish');
}

// Checks that `events` are exactly seq 1..N of one execution, in order, ending with `completed`.
function checkComplete(events, id, label) {
  check(events.length > 0, label + ': no events');
  events.forEach((e, i) => {
    check(e.executionId === id, label + ': event of another execution ' + JSON.stringify(e));
    check(e.seq === i + 1, label + ': expected seq ' + (i + 1) + ', got ' + JSON.stringify(e));
  });
  check(events[0].type === 'started', label + ': first event is ' + events[0].type);
  check(events[events.length - 1].type === 'completed',
        label + ': last event is ' + events[events.length - 1].type);
  check(events.length === 12, label + ': expected 12 events, got ' + events.length);
}

module.exports = {GATEWAY, TOKEN, OTHER_TOKEN, fail, check, slowWorkflow, rest, startRest,
                  waitTerminal, checkComplete};
