// Type tests of the public API. `tsc --noEmit -p test` (part of `npm test`) fails if a line marked
// as an expected error compiles, or if a valid use stops compiling.
import test from 'ava';
import { Director, LvsError, type LvsErrorCode, type ServiceInfo, type ServiceOptions } from 'lvs';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(_: T): void {}

async function typeChecks(d: Director): Promise<void> {
  d.addService({ protocol: 'udp', address: '10.0.0.1:53', scheduler: 'sh', schedFlags: ['sh-port'], onePacket: true });
  d.addService({ fwmark: 10, family: 'inet6', persistent: true });
  d.addServer({ fwmark: 10 }, { address: '10.0.0.2', method: 'dr' });
  d.addServer({ address: '10.0.0.1:80' }, { address: '10.0.0.2', method: 'tunnel', tunnel: { type: 'gue', port: 6080 } });
  // @ts-expect-error unknown scheduler names are rejected at compile time
  d.addService({ address: '10.0.0.1:80', scheduler: 'random' });
  // @ts-expect-error unknown protocol
  d.addService({ protocol: 'icmp', address: '10.0.0.1:80' });
  // @ts-expect-error a service needs an address or a fwmark
  d.addService({ scheduler: 'rr' });
  // @ts-expect-error forwarding methods are a closed set
  d.addServer({ address: '10.0.0.1:80' }, { address: '10.0.0.2', method: 'bypass' });
  // @ts-expect-error tunnel type is required in tunnel options
  d.addServer({ address: '10.0.0.1:80' }, { address: '10.0.0.2', tunnel: { port: 1 } });

  const svc: ServiceInfo | undefined = d.list()[0];
  if (svc?.fwmark !== undefined) {
    assertType<Equal<typeof svc.address, undefined>>(true);
  } else if (svc) {
    assertType<Equal<typeof svc.address, string>>(true);
  }
  assertType<Equal<ServiceInfo['stats']['conns'], bigint>>(true);
  assertType<Equal<ReturnType<Director['addService']>, Director>>(true);
  const opts: ServiceOptions = { address: '[::1]:80' };
  void opts;
  const code: LvsErrorCode = new LvsError('EEXIST', 'x').code;
  void code;
  // @ts-expect-error codes are a closed set
  const bad: LvsErrorCode = 'EWHATEVER';
  void bad;
}

test('type checks are compiled by tsc (this runtime test only proves the file loads)', (t) => {
  t.is(typeof typeChecks, 'function');
});
