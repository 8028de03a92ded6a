#!/usr/bin/env node
// `npm test`: every check of the project, in order, with one closing summary line.
// Steps: build (incremental), rustfmt, clippy, cargo test, tsc (SDK and tests), typedoc, ava.
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const steps = [
  { name: 'build', cmd: 'npm', args: ['run', '--silent', 'build'] },
  { name: 'rustfmt', cmd: 'cargo', args: ['fmt', '--all', '--', '--check'] },
  { name: 'clippy', cmd: 'cargo', args: ['clippy', '--workspace', '--all-targets', '--locked', '--', '-D', 'warnings'] },
  { name: 'cargo test', cmd: 'cargo', args: ['test', '--workspace', '--locked'], counts: cargoCounts },
  { name: 'tsc sdk', cmd: 'npx', args: ['tsc', '--noEmit', '-p', 'packages/lvs/tsconfig.json'] },
  { name: 'tsc tests', cmd: 'npx', args: ['tsc', '--noEmit', '-p', 'test/tsconfig.json'] },
  {
    name: 'typedoc',
    cmd: 'npx',
    args: ['typedoc', '--options', 'packages/lvs/typedoc.json', '--tsconfig', 'packages/lvs/tsconfig.json',
      '--entryPoints', 'packages/lvs/src/index.ts', '--out', join(tmpdir(), `lvs-docs-check-${process.pid}`)],
    cleanup: () => rmSync(join(tmpdir(), `lvs-docs-check-${process.pid}`), { recursive: true, force: true }),
  },
  { name: 'ava', cmd: 'npx', args: ['ava'], counts: avaCounts },
];

function cargoCounts(out) {
  let passed = 0;
  let failed = 0;
  for (const m of out.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed/g)) {
    passed += Number(m[1]);
    failed += Number(m[2]);
  }
  return { passed, failed };
}

function avaCounts(out) {
  const n = (re) => Number(out.match(re)?.[1] ?? 0);
  return { passed: n(/(\d+) tests? passed/), failed: n(/(\d+) tests? failed/) + n(/(\d+) uncaught exceptions?/) };
}

function run({ cmd, args }) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
    let out = '';
    child.stdout.on('data', (b) => { out += b; process.stdout.write(b); });
    child.stderr.on('data', (b) => { out += b; process.stderr.write(b); });
    child.on('error', (err) => resolve({ code: 127, out: String(err) }));
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), out }));
  });
}

// What failed, repeated just above the summary: CI keeps only the tail of a long log, and a failure
// (or an uncaught exception, which names its file) printed minutes earlier would be cut off.
function failureLines(out) {
  const lines = out.split('\n');
  const picked = [];
  lines.forEach((line, i) => {
    if (/^\s*✘|Uncaught exception|Unhandled rejection|^failures:|^---- .* stdout ----$|^error(\[\w+\])?:/.test(line)) {
      picked.push(...lines.slice(i, i + 10).filter((l) => !/^\s*✔/.test(l)).map((l) => l.slice(0, 200)));
    }
  });
  return picked.length > 0 ? picked.slice(0, 60) : lines.slice(-15);
}

const results = [];
for (const step of steps) {
  console.log(`\n=== ${step.name}: ${step.cmd} ${step.args.join(' ')}`);
  const started = Date.now();
  const { code, out } = await run(step);
  step.cleanup?.();
  const counts = step.counts?.(out);
  results.push({ name: step.name, ok: code === 0, code, counts, secs: (Date.now() - started) / 1000, out });
}

for (const r of results.filter((r) => !r.ok)) {
  console.log(`\n=== ${r.name} failed; what it said about it:`);
  for (const line of failureLines(r.out)) console.log(line);
}

let passed = 0;
let failed = 0;
console.log('\n=== summary');
for (const r of results) {
  const tests = r.counts ? ` (${r.counts.passed} passed, ${r.counts.failed} failed)` : '';
  console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name.padEnd(10)} ${r.secs.toFixed(1).padStart(6)} s${tests}${r.ok ? '' : ` exit ${r.code}`}`);
  if (r.counts) {
    passed += r.counts.passed;
    failed += r.counts.failed;
    // A runner that failed without reporting a failing test still fails the run.
    if (!r.ok && r.counts.failed === 0) failed += 1;
  } else if (r.ok) {
    passed += 1;
  } else {
    failed += 1;
  }
}
console.log(`total: ${passed} passed, ${failed} failed`);
process.exit(results.every((r) => r.ok) ? 0 : 1);
