// The npm socket.io-client 4.x against the gateway's Socket.IO endpoint: connect with auth.token,
// start executions over REST and with start-workflow-execution, subscribe late (after the
// execution finished) and live, receive every event 1..N in order; a reconnect resumes with
// afterSeq without loss; another workspace's execution is refused; a bad token gets connect_error.
'use strict';

const {io} = require('socket.io-client');
const {GATEWAY, TOKEN, OTHER_TOKEN, fail, check, startRest, waitTerminal, checkComplete,
       slowWorkflow} = require('./common');

function connect(token) {
  return new Promise((resolve, reject) => {
    const socket = io(GATEWAY, {transports: ['websocket'], auth: {token}, reconnection: false});
    const timer = setTimeout(() => reject(new Error('connect timeout')), 10000);
    socket.on('connect_error', (err) => { clearTimeout(timer); reject(err); });
    socket.on('connected', (info) => { clearTimeout(timer); resolve({socket, info}); });
  });
}

// Subscribes and collects execution-event for `id` until `completed` (or count events).
function collect(socket, id, payload, stopAfter) {
  return new Promise((resolve, reject) => {
    const events = [];
    const timer = setTimeout(() => reject(new Error('timeout collecting ' + id + ' after ' +
                                                    JSON.stringify(events.map((e) => e.seq)))), 30000);
    const onEvent = (e) => {
      if (e.executionId !== id) return;
      events.push(e);
      if (e.type === 'completed' || e.type === 'failed' || e.type === 'cancelled' ||
          (stopAfter && events.length >= stopAfter)) {
        clearTimeout(timer);
        socket.off('execution-event', onEvent);
        resolve(events);
      }
    };
    socket.on('execution-event', onEvent);
    socket.emit('subscribe-execution', payload, (ack) => {
      if (!ack || !ack.success) {
        clearTimeout(timer);
        reject(new Error('subscribe ack: ' + JSON.stringify(ack)));
      }
    });
  });
}

async function main() {
  // Bad tokens are refused with NodeDrop's messages.
  try {
    await connect('not-a-valid-token');
    fail('a bad token connected');
  } catch (err) {
    check(/Invalid authentication token/.test(err.message), 'connect_error message: ' + err.message);
  }

  const {socket, info} = await connect(TOKEN);
  check(info.userId === 'user-a', 'connected.userId: ' + JSON.stringify(info));

  // 1. REST start, late subscription (after the execution finished): the whole log, 1..N.
  const late = await startRest('wf-sio-late');
  await waitTerminal(late);
  checkComplete(await collect(socket, late, late), late, 'late subscription');

  // 2. start-workflow-execution with its ack, then subscribe while it runs.
  const ack = await socket.timeout(10000).emitWithAck('start-workflow-execution', {
    workflowId: 'wf-sio-live', triggerNodeId: 't', workflowData: slowWorkflow('wf-sio-live'),
    options: {timeout: 300000, manual: true},
  });
  check(ack.success === true && typeof ack.executionId === 'string' &&
        ack.message === 'Workflow execution started', 'start ack: ' + JSON.stringify(ack));
  const subscribed = new Promise((ok) => socket.once('execution-subscribed', ok));
  checkComplete(await collect(socket, ack.executionId, ack.executionId), ack.executionId, 'live');
  const sub = await subscribed;
  check(sub.executionId === ack.executionId, 'execution-subscribed: ' + JSON.stringify(sub));

  // 3. Reconnect: read 4 events, drop the connection, reconnect and resume after the last seq.
  const resumed = await startRest('wf-sio-resume');
  const first = await collect(socket, resumed, resumed, 4);
  socket.disconnect();
  const again = (await connect(TOKEN)).socket;
  const rest = await collect(again, resumed,
                             {executionId: resumed, afterSeq: first[first.length - 1].seq});
  checkComplete(first.concat(rest), resumed, 'reconnect');

  // 4. Another workspace cannot join.
  const other = (await connect(OTHER_TOKEN)).socket;
  const denied = await other.timeout(10000).emitWithAck('subscribe-execution', resumed);
  check(denied.success === false && denied.code === 'NOT_FOUND',
        'other workspace subscribe: ' + JSON.stringify(denied));

  // 5. A bad start payload is a failed ack naming the field.
  const bad = await again.timeout(10000).emitWithAck('start-workflow-execution', {workflowId: 5});
  check(bad.success === false && /workflowId/.test(bad.error), 'bad start: ' + JSON.stringify(bad));

  socket.close(); again.close(); other.close();
  console.log('OK socket.io-client');
  process.exit(0);
}

main().catch((err) => fail(err.stack || String(err)));
