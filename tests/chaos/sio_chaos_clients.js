// Socket.IO clients of the chaos scenario (tests/chaos/chaos_scenario.h): npm socket.io-client 4.x
// over WebSocket, with reconnection on. Each client starts an execution every --interval_ms
// (start-workflow-execution with options.requestId, repeated with the same requestId until it is
// acknowledged, so a start lost to a gateway or ndx-queue restart is neither lost nor doubled),
// subscribes to it and follows it to its terminal event. When the gateway goes away the client
// reconnects and subscribes again to every unfinished execution with afterSeq = the last seq it
// received. Each accepted execution id is appended to --accepted at once (one line each: the
// scenario checks its Redis state while it runs); the end result goes to --out as JSON:
//   {clients, reconnects, redelivered, start_failures,
//    executions: {<id>: {seqs: [1, 2, ...], terminal: "completed" | ... | null}}}
// where seqs lists the seq of every event received, in order, events at or below the last seq
// already received (a resubscription's overlap) left out and counted in redelivered.
//
//   NODE_PATH=tests/e2e/node_modules node tests/chaos/sio_chaos_clients.js --url http://127.0.0.1:P \
//     --clients 3 --interval_ms 1000 --seconds 30 --sink http://127.0.0.1:S --http_nodes 3 \
//     --out result.json --accepted accepted.txt
'use strict';

const {io} = require('socket.io-client');
const fs = require('fs');

const args = {url: '', clients: 3, intervalMs: 1000, seconds: 30, sink: '', httpNodes: 3, out: '',
              accepted: '', drainMs: 120000};
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '').replace(/_(.)/g, (_, c) => c.toUpperCase());
  const v = process.argv[i + 1];
  args[k] = typeof args[k] === 'number' ? Number(v) : v;
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

function workflow(id) {
  const nodes = [{id: 't', name: 'Trigger', type: 'manual-trigger', parameters: {}}];
  const connections = [];
  let prev = 't';
  for (let i = 0; i < args.httpNodes; ++i) {
    const nid = 'h' + i;
    nodes.push({id: nid, name: 'Call ' + i, type: 'http-request',
                parameters: {method: 'POST', url: args.sink + '/step' + i, body: '{}'}});
    connections.push({id: 'c' + i, sourceNodeId: prev, sourceOutput: 'main', targetNodeId: nid,
                      targetInput: 'main'});
    prev = nid;
  }
  return {id, name: id, nodes, connections, settings: {}};
}

const executions = {};  // id -> {seqs, last, terminal}
let reconnects = 0, redelivered = 0, startFailures = 0;
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

function runClient(index, loadEnd) {
  const socket = io(args.url, {transports: ['websocket'], reconnection: true,
                               reconnectionDelay: 100, reconnectionDelayMax: 500,
                               timeout: 5000, forceNew: true});
  const mine = new Set();
  let connectedOnce = false;
  let lastActivity = new Map();  // id -> ms of the last event or (re)subscription

  function subscribe(id) {
    const e = executions[id];
    lastActivity.set(id, Date.now());
    socket.timeout(5000).emit('subscribe-execution', {executionId: id, afterSeq: e.last},
                              (err, ack) => {
      if (err || !ack || !ack.success) {
        // Not subscribed (gateway or ndx-queue restarting): try again shortly.
        setTimeout(() => { if (socket.connected && !e.terminal) subscribe(id); }, 300);
      }
    });
  }

  socket.on('connect', () => {
    if (connectedOnce) ++reconnects;
    connectedOnce = true;
    for (const id of mine) if (!executions[id].terminal) subscribe(id);
  });
  socket.on('execution-event', (ev) => {
    const e = executions[ev.executionId];
    if (!e || !mine.has(ev.executionId)) return;
    lastActivity.set(ev.executionId, Date.now());
    if (ev.seq <= e.last) { ++redelivered; return; }
    e.seqs.push(ev.seq);
    e.last = ev.seq;
    if (TERMINAL.has(ev.type)) e.terminal = ev.type;
  });
  // A subscription the gateway gave up on (ndx-queue away too long): subscribe again.
  socket.on('subscription-error', (ev) => {
    const id = ev && ev.executionId;
    if (id && mine.has(id) && !executions[id].terminal) setTimeout(() => subscribe(id), 300);
  });

  // Starts: one every intervalMs until loadEnd; each repeated with its requestId until acked.
  const starts = (async () => {
    let n = 0;
    while (Date.now() < loadEnd) {
      const requestId = 'sio-' + process.pid + '-' + index + '-' + n++;
      const wfId = 'wf-chaos-sio';
      const giveUp = Date.now() + 60000;
      let id = null;
      while (id === null && Date.now() < giveUp) {
        if (!socket.connected) { await sleep(100); continue; }
        try {
          const ack = await socket.timeout(5000).emitWithAck('start-workflow-execution', {
            workflowId: wfId, triggerNodeId: 't', workflowData: workflow(wfId),
            options: {requestId}});
          if (ack && ack.success && typeof ack.executionId === 'string') id = ack.executionId;
          else await sleep(200);
        } catch (err) {
          await sleep(100);
        }
      }
      if (id === null) { ++startFailures; continue; }
      if (!executions[id]) {
        executions[id] = {seqs: [], last: 0, terminal: null};
        fs.appendFileSync(args.accepted, id + '\n');
      }
      mine.add(id);
      subscribe(id);
      await sleep(args.intervalMs);
    }
  })();

  // Watchdog: an unfinished execution with no event for 5 s is subscribed again (afterSeq = last).
  const watchdog = setInterval(() => {
    if (!socket.connected) return;
    const now = Date.now();
    for (const id of mine) {
      if (!executions[id].terminal && now - (lastActivity.get(id) || 0) > 5000) subscribe(id);
    }
  }, 1000);

  return {socket, mine, starts, watchdog};
}

async function main() {
  const loadEnd = Date.now() + args.seconds * 1000;
  const clients = [];
  for (let i = 0; i < args.clients; ++i) clients.push(runClient(i, loadEnd));
  await Promise.all(clients.map((c) => c.starts));
  const deadline = Date.now() + args.drainMs;
  const pending = () => Object.values(executions).filter((e) => !e.terminal).length;
  while (pending() > 0 && Date.now() < deadline) await sleep(100);
  for (const c of clients) { clearInterval(c.watchdog); c.socket.close(); }
  const out = {clients: args.clients, reconnects, redelivered, start_failures: startFailures,
               executions: {}};
  for (const [id, e] of Object.entries(executions)) {
    out.executions[id] = {seqs: e.seqs, terminal: e.terminal};
  }
  fs.writeFileSync(args.out, JSON.stringify(out));
  process.exit(0);
}

main().catch((err) => { console.error('FAIL: ' + (err.stack || err)); process.exit(1); });
