#!/usr/bin/env node
// Offline checks of Kubernetes manifests (no cluster needed):
//   1. schema: every document is decoded by its kubernetes-models class (types, required
//      fields, enums; KEDA ScaledObject too). Unknown kinds fail: add their model here.
//   2. ndx policy: each Deployment has readiness and liveness probes, ndx-queue/ndx-worker use gRPC
//      readiness probes on their gRPC port, terminationGracePeriodSeconds is above
//      NDX_SHUTDOWN_GRACE of the ndx-config ConfigMap, every workload has a PodDisruptionBudget,
//      and the HPA's External metrics are produced by prometheus-adapter's rules (--adapter).
//
//   node check_k8s.js [--adapter RULES.yaml] [--policy] FILE...   (FILE "-" = stdin)
// Prints one line per problem and exits 1 if there is any.
'use strict';
const fs = require('fs');
const path = require('path');
let yaml;
try {
  yaml = require('js-yaml');
} catch (e) {
  console.error('check_k8s: node modules missing: run `npm ci --prefix tests/deploy` (see ./dev deps)');
  process.exit(1);
}

const models = {
  'v1/Namespace': () => require('kubernetes-models/v1').Namespace,
  'v1/ConfigMap': () => require('kubernetes-models/v1').ConfigMap,
  'v1/Secret': () => require('kubernetes-models/v1').Secret,
  'v1/Service': () => require('kubernetes-models/v1').Service,
  'apps/v1/Deployment': () => require('kubernetes-models/apps/v1').Deployment,
  'policy/v1/PodDisruptionBudget': () => require('kubernetes-models/policy/v1').PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': () =>
    require('kubernetes-models/autoscaling/v2').HorizontalPodAutoscaler,
  'keda.sh/v1alpha1/ScaledObject': () =>
    require('@kubernetes-models/keda/keda.sh/v1alpha1').ScaledObject,
};

const args = process.argv.slice(2);
let adapterFile = null;
let policy = false;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--adapter') adapterFile = args[++i];
  else if (args[i] === '--policy') policy = true;
  else files.push(args[i]);
}
if (files.length === 0) {
  console.error('usage: check_k8s.js [--adapter RULES.yaml] [--policy] FILE...');
  process.exit(2);
}

const problems = [];
const docs = [];
for (const file of files) {
  const text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  let parsed;
  try {
    parsed = yaml.loadAll(text);
  } catch (e) {
    problems.push(`${file}: not valid YAML: ${e.message.split('\n')[0]}`);
    continue;
  }
  for (const doc of parsed) {
    if (doc === null || doc === undefined) continue;
    if (file !== '-' && path.basename(file) === 'kustomization.yaml') continue;
    docs.push({file, doc});
  }
}

for (const {file, doc} of docs) {
  const key = `${doc.apiVersion}/${doc.kind}`;
  const name = `${file}: ${doc.kind || '?'} ${(doc.metadata && doc.metadata.name) || '?'}`;
  const model = models[key];
  if (!model) {
    problems.push(`${name}: no schema for ${key} (add its kubernetes-models class to check_k8s.js)`);
    continue;
  }
  try {
    new (model())(doc).validate();
  } catch (e) {
    problems.push(`${name}: ${e.message}`);
  }
}

function durationSeconds(text) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(String(text).trim());
  if (!m) return NaN;
  const unit = {ms: 0.001, s: 1, m: 60, h: 3600}[m[2] || 's'];
  return Number(m[1]) * unit;
}

if (policy) {
  const byKind = (kind) => docs.filter(({doc}) => doc.kind === kind).map(({doc}) => doc);
  const config = byKind('ConfigMap').find((c) => c.metadata.name === 'ndx-config');
  const grace = config ? durationSeconds(config.data.NDX_SHUTDOWN_GRACE || '30s') : 30;
  if (!config) problems.push('policy: no ConfigMap ndx-config');
  const grpcPorts = {'ndx-queue': 50051, 'ndx-worker': 50052};
  const pdbs = byKind('PodDisruptionBudget');
  for (const d of byKind('Deployment')) {
    const name = d.metadata.name;
    const spec = d.spec.template.spec;
    const tgps = spec.terminationGracePeriodSeconds;
    if (!(tgps > grace)) {
      problems.push(`policy: Deployment ${name}: terminationGracePeriodSeconds ${tgps} must be ` +
                    `above NDX_SHUTDOWN_GRACE (${grace}s)`);
    }
    for (const c of spec.containers) {
      if (!c.readinessProbe) problems.push(`policy: ${name}/${c.name}: no readinessProbe`);
      if (!c.livenessProbe) problems.push(`policy: ${name}/${c.name}: no livenessProbe`);
      const want = grpcPorts[name];
      if (want && !(c.readinessProbe && c.readinessProbe.grpc && c.readinessProbe.grpc.port === want)) {
        problems.push(`policy: ${name}/${c.name}: readinessProbe must be grpc on port ${want}`);
      }
    }
    const labels = d.spec.selector.matchLabels || {};
    const covered = pdbs.some((p) => Object.entries(p.spec.selector.matchLabels || {})
                                         .every(([k, v]) => labels[k] === v));
    if (!covered) problems.push(`policy: Deployment ${name}: no PodDisruptionBudget selects it`);
  }
  if (adapterFile) {
    const adapter = yaml.load(fs.readFileSync(adapterFile, 'utf8'));
    const served = new Set(((adapter.rules || {}).external || []).map((r) => r.name && r.name.as));
    for (const h of byKind('HorizontalPodAutoscaler')) {
      for (const m of h.spec.metrics || []) {
        if (m.type !== 'External') continue;
        if (!served.has(m.external.metric.name)) {
          problems.push(`policy: HPA ${h.metadata.name}: External metric ` +
                        `${m.external.metric.name} is not produced by ${adapterFile}`);
        }
      }
    }
  }
}

for (const p of problems) console.error(p);
console.log(`check_k8s: ${docs.length} documents, ${problems.length} problems`);
process.exit(problems.length ? 1 : 0);
