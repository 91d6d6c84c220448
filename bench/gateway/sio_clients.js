// `ndx-bench gateway`, phase 2: N Socket.IO clients (npm socket.io-client 4.x, websocket
// transport, one Node process), each starting its own execution (start-workflow-execution) and
// following it (subscribe-execution) until `completed`. Event latency = receipt time minus the
// event's `timestamp` field (set by ndx-worker when it creates the event; ISO time truncated to
// the millisecond, so each latency is overstated by 0-1 ms); same machine, same clock.
// Events created before the client subscribed (replayed from the log) are counted apart and not
// in the latency figures.
//
//   NODE_PATH=tests/e2e/node_modules node bench/gateway/sio_clients.js \
//     --url http://127.0.0.1:PORT --clients 1000 --out result.json
'use strict';

const {io} = require('socket.io-client');
const fs = require('fs');

const args = {url: '', clients: 1000, out: '', waitMs: 400, steps: 5, hold: 3000, inflight: 50,
              timeout: 180000};
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '').replace(/_(.)/g, (_, c) => c.toUpperCase());
  args[k] = k === 'url' || k === 'out' ? process.argv[i + 1] : Number(process.argv[i + 1]);
}

const nowMs = () => performance.timeOrigin + performance.now();

// trigger -> (wait, set) x steps: about steps*waitMs long.
function workflow(id) {
  const nodes = [{id: 't', name: 'Manual Trigger', type: 'manual-trigger', parameters: {}}];
  const connections = [];
  let prev = 't';
  for (let i = 1; i <= args.steps; ++i) {
    nodes.push({id: 'w' + i, name: 'Wait ' + i, type: 'wait',
                parameters: {duration: args.waitMs, unit: 'milliseconds'}});
    nodes.push({id: 's' + i, name: 'Set ' + i, type: 'set',
                parameters: {values: [{keyValue: {key: 'k' + i, value: 'v'}}]}});
    connections.push({id: 'cw' + i, sourceNodeId: prev, sourceOutput: 'main', targetNodeId: 'w' + i,
                      targetInput: 'main'});
    connections.push({id: 'cs' + i, sourceNodeId: 'w' + i, sourceOutput: 'main',
                      targetNodeId: 's' + i, targetInput: 'main'});
    prev = 's' + i;
  }
  return {id, name: id, nodes, connections, settings: {saveExecutionToDatabase: false}};
}

function connect() {
  return new Promise((resolve, reject) => {
    const socket = io(args.url, {transports: ['websocket'], reconnection: false, forceNew: true,
                                 timeout: 30000});
    const timer = setTimeout(() => reject(new Error('connect timeout')), 30000);
    socket.on('connect_error', (err) => { clearTimeout(timer); reject(err); });
    socket.on('connected', () => { clearTimeout(timer); resolve(socket); });
  });
}

// Runs fn(i) for i in [0, n) with at most `limit` promises pending.
async function pool(n, limit, fn) {
  let next = 0;
  const runners = [];
  for (let r = 0; r < Math.min(limit, n); ++r) {
    runners.push((async () => { while (next < n) await fn(next++); })());
  }
  await Promise.all(runners);
}

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))];
}

async function main() {
  const t0 = nowMs();
  const sockets = new Array(args.clients);
  await pool(args.clients, args.inflight, async (i) => { sockets[i] = await connect(); });
  const connectS = (nowMs() - t0) / 1000;
  fs.writeFileSync(args.out + '.connected', String(Date.now()));

  const latencies = [];
  const afterStart = [];  // events received once every execution had been started
  let allStarted = false;
  let replayed = 0, events = 0, failedExecs = 0, startErrors = 0;
  const t1 = nowMs();
  const finished = [];
  await pool(args.clients, args.inflight, async (i) => {
    const socket = sockets[i];
    const wf = 'wf-gwbench-' + i;
    let ack;
    try {
      ack = await socket.timeout(30000).emitWithAck('start-workflow-execution', {
        workflowId: wf, triggerNodeId: 't', workflowData: workflow(wf),
        options: {timeout: 300000, manual: true}});
    } catch (err) { ++startErrors; return; }
    if (!ack || !ack.success) { ++startErrors; return; }
    const id = ack.executionId;
    const subscribedAt = Date.now();
    finished.push(new Promise((resolve) => {
      const timer = setTimeout(() => { ++failedExecs; resolve(); }, args.timeout);
      socket.on('execution-event', (e) => {
        const got = nowMs();
        if (e.executionId !== id) return;
        ++events;
        const ts = Date.parse(e.timestamp);
        if (ts < subscribedAt) {
          ++replayed;
        } else {
          latencies.push(got - ts);
          if (allStarted) afterStart.push(got - ts);
        }
        if (e.type === 'completed' || e.type === 'failed' || e.type === 'cancelled') {
          if (e.type !== 'completed') ++failedExecs;
          clearTimeout(timer);
          resolve();
        }
      });
      socket.emit('subscribe-execution', id);
    }));
  });
  const startedS = (nowMs() - t1) / 1000;
  allStarted = true;
  await Promise.all(finished);
  const followS = (nowMs() - t1) / 1000;
  latencies.sort((a, b) => a - b);
  afterStart.sort((a, b) => a - b);
  const result = {
    clients: args.clients, connected: sockets.filter(Boolean).length, connect_s: connectS,
    start_s: startedS, follow_s: followS, start_errors: startErrors, failed: failedExecs,
    events, replayed, measured: latencies.length,
    p50_ms: percentile(latencies, 50), p90_ms: percentile(latencies, 90),
    p99_ms: percentile(latencies, 99), max_ms: latencies.length ? latencies[latencies.length - 1] : 0,
    after_start: afterStart.length, after_start_p50_ms: percentile(afterStart, 50),
    after_start_p99_ms: percentile(afterStart, 99),
  };
  fs.writeFileSync(args.out, JSON.stringify(result));
  // Held open for a while (the bench samples the gateway's RSS), then closed.
  await new Promise((ok) => setTimeout(ok, args.hold));
  for (const s of sockets) if (s) s.close();
  await new Promise((ok) => setTimeout(ok, 500));
  process.exit(0);
}

main().catch((err) => { console.error('FAIL: ' + (err.stack || err)); process.exit(1); });
