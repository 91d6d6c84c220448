// Opens the gateway's dashboard in headless Chromium (Debian's `chromium`, driven over the Chrome
// DevTools Protocol with the npm `ws` client), starts an execution over REST and checks that the
// page shows it running and then finished, that the queue counters are rendered, and that the
// workers panel shows the worker that ran it (from the worker registry, through ndx-queue).
'use strict';

const {spawn} = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const WebSocket = require('ws');
const {GATEWAY, TOKEN, fail, check, rest, slowWorkflow} = require('./common');

const CHROMIUM = process.env.CHROMIUM || 'chromium';
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ndx-chromium-'));
  const browser = spawn(CHROMIUM, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage',
    '--remote-debugging-port=0', '--user-data-dir=' + profile, 'about:blank',
  ], {stdio: ['ignore', 'ignore', 'pipe']});
  let stderr = '';
  browser.stderr.on('data', (d) => { stderr += d; });
  browser.on('exit', (code) => { if (code) console.error('chromium exited ' + code + ': ' + stderr); });
  process.on('exit', () => {
    try { browser.kill('SIGKILL'); } catch (e) {}
    // Chromium may still be writing its profile while it dies; the directory is in $TMPDIR.
    try { fs.rmSync(profile, {recursive: true, force: true, maxRetries: 5}); } catch (e) {}
  });

  // Chromium writes its DevTools port and browser target path into the profile directory.
  const portFile = path.join(profile, 'DevToolsActivePort');
  for (let i = 0; i < 300 && !fs.existsSync(portFile); ++i) await sleep(100);
  check(fs.existsSync(portFile), 'chromium did not start: ' + stderr);
  await sleep(100);
  const [port, browserPath] = fs.readFileSync(portFile, 'utf8').trim().split('\n');
  const cdp = new WebSocket('ws://127.0.0.1:' + port + browserPath);
  await new Promise((ok, ko) => { cdp.once('open', ok); cdp.once('error', ko); });
  let nextId = 1;
  const pending = new Map();
  cdp.on('message', (data) => {
    const m = JSON.parse(data);
    if (m.id && pending.has(m.id)) { pending.get(m.id)(m); pending.delete(m.id); }
  });
  const call = (method, params = {}, sessionId) => new Promise((ok, ko) => {
    const id = nextId++;
    pending.set(id, (m) => (m.error ? ko(new Error(method + ': ' + JSON.stringify(m.error))) : ok(m.result)));
    cdp.send(JSON.stringify({id, method, params, sessionId}));
  });

  const url = GATEWAY + '/#token=' + encodeURIComponent(TOKEN);
  const {targetId} = await call('Target.createTarget', {url});
  const {sessionId} = await call('Target.attachToTarget', {targetId, flatten: true});
  const evaluate = async (expression) => {
    const r = await call('Runtime.evaluate', {expression, returnByValue: true}, sessionId);
    return r.result.value;
  };
  const waitFor = async (expression, what, timeoutMs = 20000) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const v = await evaluate(expression).catch(() => undefined);
      if (v) return v;
      await sleep(50);
    }
    fail('dashboard: ' + what + ' (page: ' +
         (await evaluate('document.body && document.body.innerText').catch(() => '?')) + ')');
  };

  await waitFor('document.getElementById("conn") && document.getElementById("conn").textContent === "live"',
                'the WebSocket did not connect');
  await waitFor('!!document.getElementById("stat-waiting")', 'queue counters not shown');

  // A workflow that runs long enough to be seen running.
  const wf = slowWorkflow('wf-dashboard');
  for (const n of wf.nodes) if (n.type === 'wait') n.parameters.duration = 700;
  const r = await rest('POST', '/api/executions', {workflowId: 'wf-dashboard', triggerNodeId: 't', workflowData: wf});
  check(r.status === 201, 'start: ' + JSON.stringify(r));
  const id = r.body.data.executionId;
  const row = 'document.getElementById("exec-' + id + '")';
  const running = await waitFor(row + ' && ' + row + '.dataset.status === "RUNNING" && ' + row + '.innerText',
                                'execution ' + id + ' never shown running');
  const done = await waitFor(row + ' && ' + row + '.dataset.status === "SUCCESS" && ' + row + '.innerText',
                             'execution ' + id + ' never shown finished');
  check(/Set s2/.test(done), 'per-node progress missing in row: ' + done);
  // The worker that ran it reports through the registry; the panel refreshes every 2 s.
  const worker = await waitFor(
      '[...document.querySelectorAll("#workers tr")].map((tr) => +tr.dataset.processed).some((n) => n >= 1) && ' +
      'document.getElementById("workers").innerText', 'no worker with a processed execution shown');
  // Its timeline: click the row, the page replays the whole log from seq 1.
  await evaluate(row + '.click()');
  await waitFor('document.querySelectorAll("#timeline tr").length === 12', 'timeline not complete');
  console.log('OK dashboard: running row "' + running.replace(/\s+/g, ' ') + '", finished row "' +
              done.replace(/\s+/g, ' ') + '", workers "' + worker.replace(/\s+/g, ' ') + '"');
  cdp.close();
  process.exit(0);
}

main().catch((err) => fail(err.stack || String(err)));
