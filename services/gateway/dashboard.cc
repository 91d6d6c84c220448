#include "services/gateway/dashboard.h"

namespace ndx::gateway {
namespace {

constexpr std::string_view kHtml = R"NDXHTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ndx dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:10px 16px;display:flex;gap:16px;align-items:center}
header h1{font-size:16px;margin:0}#conn{font-size:12px;padding:2px 8px;border-radius:10px;background:#666}
#conn.up{background:#2e7d32}#conn.down{background:#c62828}
main{display:grid;grid-template-columns:1fr 1fr;gap:12px;padding:12px}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:10px}
section.wide{grid-column:1/3}h2{font-size:14px;margin:0 0 8px}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:4px 6px;border-bottom:1px solid #eee;font-size:13px}
.stat{display:inline-block;margin:0 14px 6px 0}.stat b{display:block;font-size:20px}
.bar{display:inline-block;width:60px;height:8px;background:#e3e7ee;border-radius:4px;vertical-align:middle;margin-right:4px}
.bar i{display:block;height:8px;background:#5c7cfa;border-radius:4px}
.node{display:inline-block;padding:1px 6px;margin:1px;border-radius:4px;font-size:11px;background:#e3e7ee}
.node.RUNNING{background:#fff3c4}.node.SUCCESS{background:#c8e6c9}.node.ERROR{background:#ffcdd2}.node.SKIPPED{background:#eceff1;color:#888}
.st-RUNNING{color:#b26a00}.st-SUCCESS{color:#2e7d32}.st-ERROR,.st-TIMEOUT{color:#c62828}.st-CANCELLED{color:#666}
tr.sel{background:#eef3ff}tr[data-id]{cursor:pointer}code{font-size:12px}button{cursor:pointer}
#msg{color:#c62828;font-size:12px}input{width:340px}
</style></head><body>
<header><h1>ndx</h1><span id="conn">connecting</span>
<label>token <input id="token" type="password" placeholder="Bearer token (JWT or session)"></label>
<button id="save">use</button><span id="msg"></span></header>
<main>
<section><h2>Queue</h2><div id="stats">loading...</div></section>
<section><h2>Workers <span id="slots"></span></h2><div id="workers-note"></div>
<table><thead><tr><th>worker</th><th>state</th><th>slots</th><th>processed</th><th>failed</th><th>last claim</th><th>running (yours)</th></tr></thead>
<tbody id="workers"></tbody></table></section>
<section class="wide"><h2>Live executions</h2>
<table><thead><tr><th>execution</th><th>workflow</th><th>status</th><th>nodes</th><th>last event</th></tr></thead>
<tbody id="execs"></tbody></table></section>
<section><h2>Timeline <span id="tl-id"></span></h2><table><thead><tr><th>seq</th><th>time</th><th>type</th><th>node</th><th>detail</th></tr></thead>
<tbody id="timeline"></tbody></table></section>
<section><h2>Failed</h2><div id="failed-note"></div><table><tbody id="failed"></tbody></table></section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const h = (s) => String(s == null ? "" : s).replace(/[&<>"]/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;"}[c]));
const m = /token=([^&]+)/.exec(location.hash);
if (m) { localStorage.setItem("ndxToken", decodeURIComponent(m[1])); }
let token = localStorage.getItem("ndxToken") || "";
$("token").value = token;
$("save").onclick = () => { token = $("token").value.trim(); localStorage.setItem("ndxToken", token); connect(); refresh(); };
const execs = new Map();   // id -> {id, workflowId, status, nodes: Map, lastType, lastSeq}
const failed = new Map();  // id -> {id, workflowId, message}
let selected = null, ws = null, retryDelay = 500;
const STATUS = {completed: "SUCCESS", failed: "ERROR", cancelled: "CANCELLED"};

async function api(method, path) {
  const r = await fetch(path, {method, headers: token ? {Authorization: "Bearer " + token} : {}});
  const body = await r.json().catch(() => ({}));
  if (!r.ok || body.success === false) throw new Error((body.error && body.error.message) || ("HTTP " + r.status));
  return body.data;
}
async function refresh() {
  try {
    const s = await api("GET", "/api/executions/queue/stats");
    $("stats").innerHTML = ["waiting","active","delayed","completed","failed","cancelled","timedOut"]
      .map((k) => `<span class="stat" id="stat-${k}"><b>${s[k]}</b>${k}</span>`).join("") +
      `<span class="stat" id="stat-oldest"><b>${(s.oldestWaitingAgeMs/1000).toFixed(1)} s</b>oldest waiting</span>`;
    $("msg").textContent = "";
  } catch (e) { $("msg").textContent = e.message; }
  try {
    const f = await api("GET", "/api/executions/queue/failed?limit=20");
    for (const j of f.jobs) failed.set(j.executionId, {id: j.executionId, workflowId: j.workflowId, message: j.failedReason});
    $("failed-note").textContent = "";
  } catch (e) { $("failed-note").textContent = "history: " + e.message + " (showing failures seen live)"; }
  try {
    const w = await api("GET", "/api/executions/queue/workers");
    $("slots").textContent = `${w.slotsBusy}/${w.slotsTotal} slots busy`;
    const ago = (t) => t ? ((Date.now() - Date.parse(t)) / 1000).toFixed(1) + " s ago" : "never";
    $("workers").innerHTML = w.workers.map((x) => `<tr id="worker-${h(x.workerId)}" data-busy="${x.slotsBusy}" data-processed="${x.processed}">
      <td><code>${h(x.workerId)}</code><br><small>${h(x.hostname)}</small></td><td>${h(x.state)}</td>
      <td><span class="bar"><i style="width:${x.slotsTotal ? 100 * x.slotsBusy / x.slotsTotal : 0}%"></i></span>${x.slotsBusy}/${x.slotsTotal}</td>
      <td>${x.processed}</td><td>${x.failed}</td><td>${ago(x.lastClaimAt)}</td>
      <td>${x.running.map((r) => `<code>${h(r.executionId.slice(0, 8))}</code> ${h(r.currentNodeName)}`).join("<br>")}</td></tr>`).join("");
    $("workers-note").textContent = w.workers.length ? "" : "no worker has reported in the last 10 s";
  } catch (e) { $("workers-note").textContent = "workers: " + e.message; }
  renderFailed();
}
function exec(id, wf) {
  let e = execs.get(id);
  if (!e) { e = {id, workflowId: wf, status: "RUNNING", nodes: new Map(), lastType: "", lastSeq: 0}; execs.set(id, e); }
  return e;
}
function apply(ev) {
  const e = exec(ev.executionId, ev.workflowId);
  e.lastType = ev.type; e.lastSeq = Math.max(e.lastSeq, ev.seq || 0);
  const name = (ev.data && ev.data.nodeName) || ev.nodeId;
  if (ev.type === "node-started") e.nodes.set(ev.nodeId, {name, status: "RUNNING"});
  if (ev.type === "node-completed") e.nodes.set(ev.nodeId, {name, status: "SUCCESS"});
  if (ev.type === "node-failed") e.nodes.set(ev.nodeId, {name, status: "ERROR"});
  if (ev.type === "node-skipped") e.nodes.set(ev.nodeId, {name, status: "SKIPPED"});
  if (STATUS[ev.type]) e.status = (ev.executionState === "timed_out") ? "TIMEOUT" : STATUS[ev.type];
  if (ev.type === "failed") failed.set(e.id, {id: e.id, workflowId: e.workflowId, message: ev.error && ev.error.message});
  if (selected === ev.executionId) addTimeline(ev);
  render(); if (ev.type === "failed") renderFailed();
}
function render() {
  const rows = [...execs.values()].slice(-50).reverse();
  $("execs").innerHTML = rows.map((e) => `<tr id="exec-${h(e.id)}" data-id="${h(e.id)}" data-status="${e.status}" class="${e.id === selected ? "sel" : ""}">
    <td><code>${h(e.id)}</code></td><td>${h(e.workflowId)}</td><td class="st-${e.status}">${e.status}</td>
    <td>${[...e.nodes.values()].map((n) => `<span class="node ${n.status}">${h(n.name)}</span>`).join("")}</td>
    <td>${h(e.lastType)} #${e.lastSeq}</td></tr>`).join("");
  for (const tr of $("execs").querySelectorAll("tr")) tr.onclick = () => select(tr.dataset.id);
}
function renderFailed() {
  $("failed").innerHTML = [...failed.values()].map((f) => `<tr id="failed-${h(f.id)}"><td><code>${h(f.id)}</code></td>
    <td>${h(f.workflowId)}</td><td>${h(f.message)}</td><td><button data-retry="${h(f.id)}">retry</button></td></tr>`).join("");
  for (const b of $("failed").querySelectorAll("button")) b.onclick = async () => {
    try { const n = await api("POST", "/api/executions/" + b.dataset.retry + "/retry"); failed.delete(b.dataset.retry);
      exec(n.id, n.workflowId); send({type: "subscribe", executionId: n.id}); renderFailed(); render(); }
    catch (e) { $("msg").textContent = "retry: " + e.message; }
  };
}
function addTimeline(ev) {
  const detail = ev.error ? ev.error.message : (ev.data && ev.data.duration != null ? ev.data.duration + " ms" : "");
  $("timeline").insertAdjacentHTML("beforeend", `<tr><td>${ev.seq}</td><td>${h((ev.timestamp || "").slice(11, 23))}</td>
    <td>${h(ev.type)}</td><td>${h((ev.data && ev.data.nodeName) || ev.nodeId || "")}</td><td>${h(detail)}</td></tr>`);
}
function select(id) {
  if (selected) send({type: "unsubscribe", executionId: selected});
  selected = id; $("tl-id").textContent = id; $("timeline").innerHTML = "";
  send({type: "subscribe", executionId: id, afterSeq: 0}); render();
}
function send(msg) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(msg)); }
function connect() {
  if (ws) { ws.onclose = null; ws.close(); }
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws" + (token ? "?token=" + encodeURIComponent(token) : "");
  ws = new WebSocket(url);
  ws.onopen = () => { $("conn").textContent = "live"; $("conn").className = "up"; retryDelay = 500; send({type: "subscribe-all"}); };
  ws.onmessage = (m) => {
    const f = JSON.parse(m.data);
    if (f.type === "event") apply(f.event);
    else if (f.type === "error") $("msg").textContent = f.message;
  };
  ws.onclose = () => { $("conn").textContent = "disconnected"; $("conn").className = "down"; setTimeout(connect, retryDelay); retryDelay = Math.min(retryDelay * 2, 10000); };
}
connect(); refresh(); setInterval(refresh, 2000);
</script></body></html>
)NDXHTML";

}  // namespace

std::string_view DashboardHtml() { return kHtml; }

}  // namespace ndx::gateway
