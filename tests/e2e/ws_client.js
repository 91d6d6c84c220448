// The npm `ws` client against the gateway's plain WebSocket (/ws): subscribe late and live with
// afterSeq, receive 1..N in order, resume after a reconnect, refused without a token, another
// workspace's execution is NOT_FOUND.
'use strict';

const WebSocket = require('ws');
const {GATEWAY, TOKEN, OTHER_TOKEN, fail, check, startRest, waitTerminal,
       checkComplete} = require('./common');

const WS_URL = GATEWAY.replace(/^http/, 'ws') + '/ws';

function open(token) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(WS_URL + (token ? '?token=' + encodeURIComponent(token) : ''));
    ws.once('unexpected-response', (req, res) => reject(new Error('HTTP ' + res.statusCode)));
    ws.once('error', reject);
    ws.once('message', (data) => {
      const welcome = JSON.parse(data);
      if (welcome.type !== 'welcome') reject(new Error('first frame: ' + data));
      resolve(ws);
    });
  });
}

function collect(ws, id, afterSeq, stopAfter) {
  return new Promise((resolve, reject) => {
    const events = [];
    const timer = setTimeout(() => reject(new Error('timeout on ' + id)), 30000);
    const onMessage = (data) => {
      const f = JSON.parse(data);
      if (f.type === 'error') { clearTimeout(timer); ws.off('message', onMessage); reject(new Error(data)); }
      if (f.type !== 'event' || f.event.executionId !== id) return;
      events.push(f.event);
      if (f.event.type === 'completed' || (stopAfter && events.length >= stopAfter)) {
        clearTimeout(timer);
        ws.off('message', onMessage);
        resolve(events);
      }
    };
    ws.on('message', onMessage);
    ws.send(JSON.stringify({type: 'subscribe', executionId: id, afterSeq, id: 1}));
  });
}

async function main() {
  try {
    await open('');
    fail('connected without a token');
  } catch (err) {
    check(/401/.test(err.message), 'no token: ' + err.message);
  }
  const ws = await open(TOKEN);

  const late = await startRest('wf-ws-late');
  await waitTerminal(late);
  checkComplete(await collect(ws, late, 0), late, 'ws late');

  const live = await startRest('wf-ws-live');
  checkComplete(await collect(ws, live, 0), live, 'ws live');

  const resumed = await startRest('wf-ws-resume');
  const first = await collect(ws, resumed, 0, 5);
  ws.terminate();
  const ws2 = await open(TOKEN);
  const rest = await collect(ws2, resumed, first[first.length - 1].seq);
  checkComplete(first.concat(rest), resumed, 'ws reconnect');

  const other = await open(OTHER_TOKEN);
  try {
    await collect(other, resumed, 0);
    fail('other workspace could subscribe');
  } catch (err) {
    check(/NOT_FOUND/.test(err.message), 'other workspace: ' + err.message);
  }
  ws2.close(); other.close();
  console.log('OK ws');
  process.exit(0);
}

main().catch((err) => fail(err.stack || String(err)));
