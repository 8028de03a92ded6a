/**
 * `npm run demo`: a director configured the way the seeds configure LVS, through the typed API
 * and through ipvsadm syntax, listed the way ipvsadm lists it.
 * @internal
 * @module
 */
import { Director } from './director.js';

const director = await Director.open();

console.log('# The typed API: the LVS-DR/TUN cluster of the seed articles');
director
  .addService({ protocol: 'tcp', address: '10.10.36.11:80', scheduler: 'rr' })
  .addServer({ address: '10.10.36.11:80' }, { address: '10.10.36.4', method: 'route', weight: 1 })
  .addServer({ address: '10.10.36.11:80' }, { address: '10.10.36.7', method: 'tunnel', weight: 1 });

console.log('# ipvsadm syntax: persistence over all ports, and a firewall-mark service');
for (const line of [
  'ipvsadm -A -t 192.168.10.101:0 -s rr -p 1800',
  'ipvsadm -a -t 192.168.10.101:0 -r 192.168.10.200 -g',
  'ipvsadm -a -t 192.168.10.101:0 -r 192.168.10.201 -g',
  'ipvsadm -A -f 10 -s rr -p 1800',
  'ipvsadm -a -f 10 -r 192.168.10.200',
  'ipvsadm -a -f 10 -r 192.168.10.201',
]) {
  const r = director.exec(line);
  console.log(`$ ${line}${r.status === 0 ? '' : `  -> exit ${r.status}: ${r.stderr.trim()}`}`);
}

console.log('\n$ ipvsadm -Ln');
process.stdout.write(director.exec('-Ln').stdout);
console.log('\n$ ipvsadm -S -n');
process.stdout.write(director.save());

console.log('\n$ ipvsadm -A -t 10.10.36.11:80 -s rr   # again');
const again = director.exec('-A -t 10.10.36.11:80 -s rr');
console.log(`exit ${again.status}: ${again.stderr.trim()}`);
director.close();
