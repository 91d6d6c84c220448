#!/usr/bin/env node
// The BullMQ peer of `ndx-bench queue`: the same measurements as ndx's, made with BullMQ 5 (the
// queue NodeDrop uses) against the same redis-server, so that the two can be compared side by side
// in one run. `ndx-bench queue` runs it; it can also be run by hand:
//
//   node bench.js <mode> --port 6379 --payload-file payload.json [options]
//
// Modes (each prints one JSON line per measurement on stdout; progress goes to stderr):
//   enqueue-bulk    N jobs with Queue.addBulk in batches of --batch, --inflight batches at a time.
//   enqueue-single  N jobs with Queue.add, one at a time (--inflight 1) or --inflight at a time.
//   process         for each --concurrency value C (and each --procs value P): pre-fill N waiting
//                   jobs, then P worker processes, each one Worker with concurrency C and a no-op
//                   processor, drain them; measures jobs/s from the start of the workers to the
//                   moment wait and active are both empty.
//   latency         one idle worker process (concurrency C); the producer adds jobs at a fixed rate
//                   R for T seconds; the processor records add-to-processing-start per job.
//   memory          N waiting jobs (no worker): Redis used_memory growth per job.
//   worker          like process, but the processor does the work of a 10-node execution with
//                   per-node checkpoints and events (the peer of `ndx-bench worker`): --steps
//                   steps (10), each `await` XADD of a node-started event to the events stream,
//                   HSET of the step's output (a checkpoint-shaped JSON) into the job's output
//                   hash, XADD of a node-completed event carrying that output; then EXPIRE of the
//                   output hash (ndx gives its checkpoints a TTL too). Reports executions/s.
//
// Jobs are what NodeDrop enqueues: name "execute-workflow", jobId = a new UUID, data = the payload
// file's JSON (the same bytes ndx stores), and NodeDrop's DEFAULT_JOB_OPTIONS (removeOnComplete 100,
// removeOnFail 50, attempts 3, exponential backoff from 2 s).
//
// With --flush, the mode starts with FLUSHALL: only for a redis-server dedicated to the benchmark.
'use strict';

const childProcess = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const { Queue, Worker } = require('bullmq');
const IORedis = require('ioredis');

// NodeDrop backend/src/services/execution/ExecutionQueueService.ts.
const DEFAULT_JOB_OPTIONS = {
  removeOnComplete: 100,
  removeOnFail: 50,
  attempts: 3,
  backoff: { type: 'exponential', delay: 2000 },
};
const JOB_NAME = 'execute-workflow';

function parseArgs(argv) {
  const args = {
    mode: argv[0],
    host: '127.0.0.1',
    port: 6379,
    payloadFile: '',
    queue: 'workflow-executions',
    n: 10000,
    batch: 100,
    inflight: [1],
    concurrency: [50],
    procs: [1],
    rate: 2000,
    seconds: 10,
    steps: 10,
    flush: false,
  };
  const lists = new Set(['inflight', 'concurrency', 'procs']);
  const numbers = new Set(['port', 'n', 'batch', 'rate', 'seconds', 'steps']);
  for (let i = 1; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) throw new Error(`unexpected argument "${argv[i]}"`);
    const key = m[1].replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (key === 'flush') {
      args.flush = true;
      continue;
    }
    const value = m[2] !== undefined ? m[2] : argv[++i];
    if (value === undefined) throw new Error(`--${m[1]} needs a value`);
    if (!(key in args)) throw new Error(`unknown option --${m[1]}`);
    if (lists.has(key)) {
      args[key] = value.split(',').map(Number);
      if (args[key].some((v) => !(v > 0))) throw new Error(`--${m[1]}: positive numbers expected`);
    } else if (numbers.has(key)) {
      args[key] = Number(value);
      if (!(args[key] > 0)) throw new Error(`--${m[1]}: a positive number expected`);
    } else {
      args[key] = value;
    }
  }
  return args;
}

function connection(args) {
  // maxRetriesPerRequest: null is what BullMQ requires for workers (and recommends for all).
  return { host: args.host, port: args.port, maxRetriesPerRequest: null };
}

function log(msg) {
  process.stderr.write(`[bullmq-peer] ${msg}\n`);
}

function emit(record) {
  process.stdout.write(`${JSON.stringify({ impl: 'bullmq', ...record })}\n`);
}

// The payload as a JS value. NodeDrop passes an object and BullMQ stores JSON.stringify(data):
// check that this gives back exactly the file's bytes, so that both systems store the same job.
function loadPayload(args) {
  if (!args.payloadFile) throw new Error('--payload-file is required');
  const text = fs.readFileSync(args.payloadFile, 'utf8');
  const data = JSON.parse(text);
  if (JSON.stringify(data) !== text) {
    throw new Error('the payload file is not in JSON.stringify form: BullMQ would store other bytes');
  }
  return { data, bytes: Buffer.byteLength(text) };
}

function nowNs() {
  return process.hrtime.bigint();  // CLOCK_MONOTONIC: the same clock in every process
}

function seconds(fromNs) {
  return Number(nowNs() - fromNs) / 1e9;
}

// --- Redis server counters (INFO), to express the cost per job ---------------------------------

// Commands a client sends itself (never from inside a Lua script): their count is the number of
// commands on the wire, an upper bound of the round trips (pipelined commands share one).
const CLIENT_ONLY = new Set([
  'evalsha', 'eval', 'evalsha_ro', 'eval_ro', 'fcall', 'multi', 'exec', 'discard', 'watch',
  'unwatch', 'blpop', 'brpop', 'blmove', 'brpoplpush', 'bzpopmin', 'bzpopmax', 'blmpop',
  'bzmpop', 'ping', 'info', 'client', 'script', 'hello', 'auth', 'select', 'quit', 'command',
  'subscribe', 'psubscribe', 'unsubscribe', 'punsubscribe', 'memory', 'flushall', 'dbsize',
]);

async function redisCounters(redis) {
  const text = await redis.info('all');
  const out = { calls: {}, cpu: 0 };
  for (const line of text.split('\r\n')) {
    let m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (m) {
      // "client|setname" -> "client"
      const name = m[1].split('|')[0];
      out.calls[name] = (out.calls[name] || 0) + Number(m[2]);
      continue;
    }
    m = /^used_cpu_(sys|user):([\d.]+)/.exec(line);
    if (m) out.cpu += Number(m[2]);
  }
  return out;
}

// Per-job costs between two redisCounters() snapshots.
function perJob(before, after, jobs) {
  let evalsha = 0;
  let client = 0;
  let all = 0;
  for (const [name, calls] of Object.entries(after.calls)) {
    const d = calls - (before.calls[name] || 0);
    all += d;
    if (name === 'evalsha' || name === 'eval') evalsha += d;
    if (CLIENT_ONLY.has(name)) client += d;
  }
  return {
    script_calls_per_job: evalsha / jobs,
    client_commands_per_job: client / jobs,
    redis_commands_per_job: all / jobs,
    redis_cpu_us_per_job: ((after.cpu - before.cpu) * 1e6) / jobs,
  };
}

async function usedMemory(redis) {
  const text = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(text)[1]);
}

// --- Helpers -------------------------------------------------------------------------------------

function newJob(data) {
  return { name: JOB_NAME, data, opts: { jobId: crypto.randomUUID() } };
}

// Runs `total` tasks, `inflight` at a time; task(i) returns a promise.
async function runPool(total, inflight, task) {
  let next = 0;
  async function lane() {
    while (next < total) {
      const i = next++;
      await task(i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(inflight, total) }, lane));
}

async function addBulk(queue, data, n, batch, inflight) {
  const batches = Math.ceil(n / batch);
  await runPool(batches, inflight, (b) => {
    const size = Math.min(batch, n - b * batch);
    return queue.addBulk(Array.from({ length: size }, () => newJob(data)));
  });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, i)];
}

// --- Modes ---------------------------------------------------------------------------------------

// Enqueue throughput with addBulk. The first batch (scripts loading, connection) is not timed.
async function enqueueBulk(args, redis, payload) {
  for (const inflight of args.inflight) {
    if (args.flush) await redis.flushall();
    const queue = new Queue(args.queue, {
      connection: connection(args),
      defaultJobOptions: DEFAULT_JOB_OPTIONS,
    });
    await queue.waitUntilReady();
    await queue.addBulk([newJob(payload.data)]);
    const before = await redisCounters(redis);
    const cpu0 = process.cpuUsage();
    const start = nowNs();
    await addBulk(queue, payload.data, args.n, args.batch, inflight);
    const s = seconds(start);
    const cpu = process.cpuUsage(cpu0);
    const after = await redisCounters(redis);
    emit({
      mode: 'enqueue-bulk', jobs: args.n, batch: args.batch, inflight, seconds: s,
      jobs_per_s: args.n / s, client_cpu_us_per_job: (cpu.user + cpu.system) / args.n,
      payload_bytes: payload.bytes, ...perJob(before, after, args.n),
    });
    await queue.close();
  }
}

// Enqueue throughput with one add per job: sequential, or `inflight` adds outstanding.
async function enqueueSingle(args, redis, payload) {
  for (const inflight of args.inflight) {
    if (args.flush) await redis.flushall();
    const queue = new Queue(args.queue, {
      connection: connection(args),
      defaultJobOptions: DEFAULT_JOB_OPTIONS,
    });
    await queue.waitUntilReady();
    const job = newJob(payload.data);
    await queue.add(job.name, job.data, job.opts);
    const before = await redisCounters(redis);
    const cpu0 = process.cpuUsage();
    const start = nowNs();
    await runPool(args.n, inflight, () => {
      const j = newJob(payload.data);
      return queue.add(j.name, j.data, j.opts);
    });
    const s = seconds(start);
    const cpu = process.cpuUsage(cpu0);
    const after = await redisCounters(redis);
    emit({
      mode: 'enqueue-single', jobs: args.n, inflight, seconds: s, jobs_per_s: args.n / s,
      client_cpu_us_per_job: (cpu.user + cpu.system) / args.n, payload_bytes: payload.bytes,
      ...perJob(before, after, args.n),
    });
    await queue.close();
  }
}

// A worker process of the `process` mode (forked by processMode): one Worker, no-op processor.
// Protocol: -> {ready}, <- {go}, <- {stop}, -> {done, cpu_us, completed}.
async function processWorkerChild(args) {
  let completed = 0;
  const worker = new Worker(args.queue, async () => {}, {
    connection: connection(args),
    concurrency: args.concurrency[0],
    autorun: false,
  });
  worker.on('completed', () => completed++);
  worker.on('error', (e) => log(`worker error: ${e.message}`));
  await worker.waitUntilReady();
  let cpu0 = null;
  process.on('message', async (msg) => {
    if (msg.go) {
      cpu0 = process.cpuUsage();
      worker.run().catch((e) => log(`worker.run: ${e.message}`));
    } else if (msg.stop) {
      const cpu = process.cpuUsage(cpu0);
      await worker.close(true);
      process.send({ done: true, cpu_us: cpu.user + cpu.system, completed }, () =>
        process.disconnect());
    }
  });
  process.send({ ready: true });
}

function fork(mode, args, extra) {
  const argv = [mode, '--host', args.host, '--port', String(args.port), '--queue', args.queue,
    '--payload-file', args.payloadFile, ...extra];
  return childProcess.fork(__filename, argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function nextMessage(child, predicate) {
  return new Promise((resolve, reject) => {
    const onMessage = (msg) => {
      if (predicate(msg)) {
        child.off('message', onMessage);
        child.off('close', onExit);
        resolve(msg);
      }
    };
    // 'close', not 'exit': 'exit' can come before the last messages were read from the channel.
    const onExit = (code) => reject(new Error(`worker process exited with code ${code}`));
    child.on('message', onMessage);
    child.once('close', onExit);
  });
}

// No-op processing throughput: pre-filled N jobs, P processes x Worker(concurrency C).
async function processMode(args, redis, payload) {
  const waitKey = `bull:${args.queue}:wait`;
  const activeKey = `bull:${args.queue}:active`;
  for (const procs of args.procs) {
    for (const concurrency of args.concurrency) {
      if (args.flush) await redis.flushall();
      const queue = new Queue(args.queue, {
        connection: connection(args),
        defaultJobOptions: DEFAULT_JOB_OPTIONS,
      });
      await addBulk(queue, payload.data, args.n, 1000, 4);
      const children = Array.from({ length: procs }, () =>
        fork('process-worker', args, ['--concurrency', String(concurrency)]));
      await Promise.all(children.map((c) => nextMessage(c, (m) => m.ready)));
      const before = await redisCounters(redis);
      const start = nowNs();
      for (const c of children) c.send({ go: true });
      // Done when every job left wait and active: poll two LLENs every 2 ms (about 1k cheap
      // commands per second, well under 1% of what the workers send).
      for (;;) {
        const [[, waiting], [, active]] = await redis.multi().llen(waitKey).llen(activeKey).exec();
        if (waiting === 0 && active === 0) break;
        await new Promise((r) => setTimeout(r, 2));
      }
      const s = seconds(start);
      const after = await redisCounters(redis);
      const dones = children.map((c) => nextMessage(c, (m) => m.done));
      for (const c of children) c.send({ stop: true });
      const results = await Promise.all(dones);
      const completed = results.reduce((a, r) => a + r.completed, 0);
      const cpu = results.reduce((a, r) => a + r.cpu_us, 0);
      emit({
        mode: 'process', jobs: args.n, completed, concurrency, procs, seconds: s,
        jobs_per_s: args.n / s, client_cpu_us_per_job: cpu / args.n,
        payload_bytes: payload.bytes, ...perJob(before, after, args.n),
      });
      await queue.close();
    }
  }
}

// A worker process of the `worker` mode: one Worker whose processor does what ndx's worker does
// for each node of a 10-node execution: a node-started event, the node's output persisted (ndx:
// its checkpoint), a node-completed event with the output. Each Redis call is awaited before the
// next, as a step would await its persistence before the next node runs. Events go to one
// stream capped like ndx's feed (MAXLEN ~ 100000). Protocol as processWorkerChild.
async function stepWorkerChild(args) {
  let completed = 0;
  const redis = new IORedis(connection(args));
  const eventsKey = `nd:${args.queue}:events`;
  const steps = args.steps;
  const worker = new Worker(
    args.queue,
    async (job) => {
      const outKey = `nd:${args.queue}:out:${job.id}`;
      const nodes = (job.data.workflow && job.data.workflow.nodes) || [];
      let item = job.data.triggerData || {};
      for (let i = 0; i < steps; i++) {
        const node = nodes[i] || { id: `n${i + 1}`, name: `Step ${i + 1}`, type: 'set' };
        const base = {
          executionId: job.id, workflowId: 'wf-bench-light', nodeId: node.id,
          nodeName: node.name, nodeType: node.type,
        };
        await redis.xadd(eventsKey, 'MAXLEN', '~', '100000', '*', 'e', job.id, 'd',
          JSON.stringify({ type: 'node-started', ...base, timestamp: new Date().toISOString() }));
        item = { ...item, [`s${i}`]: i };  // the step's "work"
        const output = { main: [{ json: item }], metadata: { nodeId: node.id } };
        await redis.hset(outKey, node.id, JSON.stringify({ v: 1, status: 'completed', output }));
        await redis.xadd(eventsKey, 'MAXLEN', '~', '100000', '*', 'e', job.id, 'd',
          JSON.stringify({
            type: 'node-completed', ...base, timestamp: new Date().toISOString(),
            data: { outputData: output, duration: 0 },
          }));
      }
      await redis.expire(outKey, 3600);
    },
    { connection: connection(args), concurrency: args.concurrency[0], autorun: false },
  );
  worker.on('completed', () => completed++);
  worker.on('failed', (job, e) => log(`job failed: ${e.message}`));
  worker.on('error', (e) => log(`worker error: ${e.message}`));
  await worker.waitUntilReady();
  await redis.ping();
  let cpu0 = null;
  process.on('message', async (msg) => {
    if (msg.go) {
      cpu0 = process.cpuUsage();
      worker.run().catch((e) => log(`worker.run: ${e.message}`));
    } else if (msg.stop) {
      const cpu = process.cpuUsage(cpu0);
      await worker.close(true);
      redis.disconnect();
      process.send({ done: true, cpu_us: cpu.user + cpu.system, completed }, () =>
        process.disconnect());
    }
  });
  process.send({ ready: true });
}

// Executions/s of the 10-step processor: pre-filled N jobs, P processes x Worker(concurrency C).
async function workerMode(args, redis, payload) {
  const waitKey = `bull:${args.queue}:wait`;
  const activeKey = `bull:${args.queue}:active`;
  for (const procs of args.procs) {
    for (const concurrency of args.concurrency) {
      if (args.flush) await redis.flushall();
      const queue = new Queue(args.queue, {
        connection: connection(args),
        defaultJobOptions: DEFAULT_JOB_OPTIONS,
      });
      await addBulk(queue, payload.data, args.n, 1000, 4);
      const children = Array.from({ length: procs }, () =>
        fork('worker-child', args, ['--concurrency', String(concurrency),
          '--steps', String(args.steps)]));
      await Promise.all(children.map((c) => nextMessage(c, (m) => m.ready)));
      const before = await redisCounters(redis);
      const start = nowNs();
      for (const c of children) c.send({ go: true });
      for (;;) {
        const [[, waiting], [, active]] = await redis.multi().llen(waitKey).llen(activeKey).exec();
        if (waiting === 0 && active === 0) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      const s = seconds(start);
      const after = await redisCounters(redis);
      const dones = children.map((c) => nextMessage(c, (m) => m.done));
      for (const c of children) c.send({ stop: true });
      const results = await Promise.all(dones);
      const completed = results.reduce((a, r) => a + r.completed, 0);
      const cpu = results.reduce((a, r) => a + r.cpu_us, 0);
      const costs = perJob(before, after, args.n);
      emit({
        mode: 'worker', executions: args.n, completed, concurrency, procs, steps: args.steps,
        seconds: s, exec_per_s: args.n / s, client_cpu_us_per_exec: cpu / args.n,
        redis_cpu_us_per_exec: costs.redis_cpu_us_per_job,
        redis_commands_per_exec: costs.redis_commands_per_job,
        script_calls_per_exec: costs.script_calls_per_job,
        redis_cpu_util: (costs.redis_cpu_us_per_job * args.n) / 1e6 / s,
        client_cpu_util: cpu / 1e6 / s, payload_bytes: payload.bytes,
      });
      await queue.close();
    }
  }
}

// The worker process of the `latency` mode. Each job's id carries the CLOCK_MONOTONIC nanoseconds
// at which the producer called add() (job.timestamp is the same instant in Date.now()
// milliseconds, too coarse for a 5 ms p99); the processor records now - that, as its first step.
async function latencyWorkerChild(args) {
  const samples = [];
  const coarse = [];
  const worker = new Worker(
    args.queue,
    async (job) => {
      const t = nowNs();
      const sent = BigInt(job.id.split('-')[1]);
      samples.push(Number(t - sent) / 1e6);
      coarse.push(Date.now() - job.timestamp);
    },
    { connection: connection(args), concurrency: args.concurrency[0] },
  );
  worker.on('error', (e) => log(`worker error: ${e.message}`));
  await worker.waitUntilReady();
  process.on('message', async (msg) => {
    if (msg.collect) {
      await worker.close(true);
      process.send({ samples, coarse }, () => process.disconnect());
    }
  });
  process.send({ ready: true });
}

// Enqueue-to-processing-start latency at a fixed rate, with an idle worker already waiting.
async function latencyMode(args, redis, payload) {
  if (args.flush) await redis.flushall();
  const concurrency = args.concurrency[0];
  const child = fork('latency-worker', args, ['--concurrency', String(concurrency)]);
  await nextMessage(child, (m) => m.ready);
  const queue = new Queue(args.queue, {
    connection: connection(args),
    defaultJobOptions: DEFAULT_JOB_OPTIONS,
  });
  await queue.waitUntilReady();
  await new Promise((r) => setTimeout(r, 500));  // the worker is blocked on its marker by now
  const total = Math.round(args.rate * args.seconds);
  const intervalNs = BigInt(Math.round(1e9 / args.rate));
  const start = nowNs();
  const pending = [];
  let sent = 0;
  // Open loop: every job is added at its scheduled time (start + i / rate) or as soon after it as
  // the event loop allows, whether or not earlier adds have returned.
  while (sent < total) {
    const now = nowNs();
    while (sent < total && start + BigInt(sent) * intervalNs <= now) {
      const t = nowNs();
      pending.push(queue.add(JOB_NAME, payload.data, { jobId: `lat-${t}-${sent}` }));
      sent++;
    }
    if (pending.length > 1000) pending.splice(0, pending.length - 1000);
    // Sleep until the next job is due (timers have about 1 ms granularity: jobs then leave in
    // small bursts, each timed from its own add() call). Never spin: the CPU is shared.
    const wait = Number(start + BigInt(sent) * intervalNs - nowNs()) / 1e6;
    await new Promise((r) => setTimeout(r, Math.max(0, wait)));
  }
  await Promise.all(pending);
  const achieved = total / seconds(start);
  // Wait until the worker has started every job.
  for (;;) {
    const counts = await queue.getJobCounts('wait', 'active', 'prioritized');
    if (counts.wait + counts.active + counts.prioritized === 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const got = nextMessage(child, (m) => m.samples);
  child.send({ collect: true });
  const { samples, coarse } = await got;
  samples.sort((a, b) => a - b);
  coarse.sort((a, b) => a - b);
  emit({
    mode: 'latency', rate: args.rate, achieved_rate: achieved, seconds: args.seconds,
    jobs: samples.length, concurrency, p50_ms: percentile(samples, 50),
    p90_ms: percentile(samples, 90), p99_ms: percentile(samples, 99),
    max_ms: samples.length ? samples[samples.length - 1] : 0,
    timestamp_p99_ms: percentile(coarse, 99), payload_bytes: payload.bytes,
  });
  await queue.close();
}

// Redis memory per waiting job: used_memory growth over N waiting jobs, divided by N. BullMQ has
// no TTL for waiting jobs: they stay until processed or removed.
async function memoryMode(args, redis, payload) {
  if (args.flush) await redis.flushall();
  const queue = new Queue(args.queue, {
    connection: connection(args),
    defaultJobOptions: DEFAULT_JOB_OPTIONS,
  });
  await queue.waitUntilReady();
  const base = await usedMemory(redis);
  const baseKeys = await redis.dbsize();
  await addBulk(queue, payload.data, args.n, args.batch, 1);
  const after = await usedMemory(redis);
  const keys = await redis.dbsize();
  emit({
    mode: 'memory', jobs: args.n, payload_bytes: payload.bytes,
    bytes_per_job: (after - base) / args.n, keys_per_job: (keys - baseKeys) / args.n,
  });
  await queue.close();
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  // A forked worker process ends with its parent (even one that was killed).
  if (process.send) process.on('disconnect', () => process.exit(0));
  if (args.mode === 'process-worker') return processWorkerChild(args);
  if (args.mode === 'latency-worker') return latencyWorkerChild(args);
  if (args.mode === 'worker-child') return stepWorkerChild(args);
  const modes = {
    'enqueue-bulk': enqueueBulk,
    'enqueue-single': enqueueSingle,
    process: processMode,
    latency: latencyMode,
    memory: memoryMode,
    worker: workerMode,
  };
  const run = modes[args.mode];
  if (!run) {
    throw new Error(`mode must be one of ${Object.keys(modes).join(', ')} (got "${args.mode}")`);
  }
  const payload = loadPayload(args);
  const redis = new IORedis(connection(args));
  try {
    await run(args, redis, payload);
  } finally {
    redis.disconnect();
  }
}

main().catch((e) => {
  log(`error: ${e.stack || e.message}`);
  process.exit(1);
});
