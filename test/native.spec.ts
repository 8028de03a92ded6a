// Properties of the binding itself: panics become errors, and the process exits normally.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const bindingPath = fileURLToPath(new URL('../packages/lvs/native/binding.cjs', import.meta.url));

test('a Rust panic reaches JavaScript as an EPANIC error, and the addon keeps working', (t) => {
  const binding = require(bindingPath) as {
    __lvsPanicForTest(): void;
    NativeDirector: new () => { list(): unknown[] };
  };
  const err = t.throws(() => binding.__lvsPanicForTest());
  t.is((err as Error & { code?: string }).code, 'EPANIC');
  t.regex(err?.message ?? '', /deliberate panic/);
  t.deepEqual(new binding.NativeDirector().list(), []);
});

test('a script that uses a director exits on its own', (t) => {
  const script = `
    import { Director } from 'lvs';
    const d = await Director.open();
    d.addService({ protocol: 'tcp', address: '10.0.0.1:80', scheduler: 'rr' });
    console.log(d.list().length);
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    timeout: 15_000,
    encoding: 'utf8',
  });
  t.is(r.error, undefined, 'did not time out');
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout.trim(), '1');
});
