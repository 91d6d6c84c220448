#!/usr/bin/env node
// Extracts the PromQL that the autoscalers run and prints it as a Prometheus recording-rule file,
// so that `promtool check rules` checks its syntax offline:
//   - every metricsQuery of a prometheus-adapter rules file (deploy/prometheus/
//     prometheus-adapter.yaml), expanded as the adapter does for an HPA selecting queue="default";
//   - every prometheus trigger query of KEDA ScaledObjects.
//   node autoscaler_queries.js FILE... > /tmp/q.rules.yaml && promtool check rules /tmp/q.rules.yaml
'use strict';
const fs = require('fs');
const yaml = require('js-yaml');

const rules = [];
function fail(msg) {
  console.error(msg);
  process.exit(1);
}
for (const file of process.argv.slice(2)) {
  for (const doc of yaml.loadAll(fs.readFileSync(file, 'utf8'))) {
    if (!doc) continue;
    if (doc.rules && doc.rules.external) {
      doc.rules.external.forEach((r, i) => {
        const series = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(r.seriesQuery || '');
        if (!series || !r.metricsQuery) {
          fail(`${file}: rules.external[${i}] needs seriesQuery and metricsQuery`);
        }
        const expr = r.metricsQuery.replace(/<<\.Series>>/g, series[0])
                         .replace(/<<\.LabelMatchers>>/g, 'queue="default"')
                         .replace(/<<\.GroupBy>>/g, 'queue');
        rules.push({record: `adapter:${(r.name && r.name.as) || series[0]}`, expr});
      });
    } else if (doc.kind === 'ScaledObject') {
      (doc.spec.triggers || []).forEach((t, i) => {
        if (t.type !== 'prometheus') return;
        if (!t.metadata || !t.metadata.query) fail(`${file}: triggers[${i}] has no query`);
        rules.push({record: `keda:${t.name || i}`, expr: t.metadata.query});
      });
    }
  }
}
if (rules.length === 0) fail('no autoscaler queries found');
process.stdout.write(yaml.dump({groups: [{name: 'autoscaler-queries', rules}]}));
