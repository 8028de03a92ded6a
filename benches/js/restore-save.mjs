#!/usr/bin/env node
// Restore and save of 100,000 ipvsadm rule lines through the SDK (issue: "restore 100,000 lines
// and save them back, each under one second"). Run: node benches/js/restore-save.mjs
// Rules: 10,000 TCP services (rr/wrr/wlc/sh/mh in turn) with 9 real servers each = 100,000 lines.
import { performance } from 'node:perf_hooks';
import { Director } from 'lvs';

const SERVICES = 10_000;
const SERVERS = 9;
const scheds = ['rr', 'wrr', 'wlc', 'sh', 'mh'];
const lines = [];
for (let i = 0; i < SERVICES; i++) {
  const vip = `10.${(i >> 8) & 255}.${i & 255}.1:80`;
  lines.push(`-A -t ${vip} -s ${scheds[i % scheds.length]}`);
  for (let j = 0; j < SERVERS; j++) {
    lines.push(`-a -t ${vip} -r 172.16.${(i * SERVERS + j) >> 8 & 255}.${(i * SERVERS + j) & 255}:8080 -m -w ${1 + (j % 5)}`);
  }
}
const text = `${lines.join('\n')}\n`;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const restoreMs = [];
const saveMs = [];
let saved = '';
for (let run = 0; run < 5; run++) {
  const d = await Director.open();
  let t0 = performance.now();
  d.restore(text);
  restoreMs.push(performance.now() - t0);
  t0 = performance.now();
  saved = d.save();
  saveMs.push(performance.now() - t0);
  d.close();
}
const savedLines = saved.split('\n').length - 1;
if (savedLines !== lines.length) throw new Error(`saved ${savedLines} lines, expected ${lines.length}`);
console.log(`rules: ${lines.length} lines (${SERVICES} services x ${SERVERS} servers)`);
console.log(`restore: median ${median(restoreMs).toFixed(0)} ms of 5 (min ${Math.min(...restoreMs).toFixed(0)}, max ${Math.max(...restoreMs).toFixed(0)})`);
console.log(`save:    median ${median(saveMs).toFixed(0)} ms of 5 (min ${Math.min(...saveMs).toFixed(0)}, max ${Math.max(...saveMs).toFixed(0)})`);
