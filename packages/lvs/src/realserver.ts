/**
 * Preparing a real server for direct routing or tunnelling, as the seeds' `realserver.sh` and
 * `lvs-tun` scripts do: the VIP on a non-ARPing device, `arp_ignore`/`arp_announce` so the
 * server never answers ARP for it, and for tunnels `rp_filter` off. Undone exactly: settings are
 * restored to what they were, not to zero.
 * @module
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { promisify } from 'node:util';
import { LvsError } from './errors.js';

const run = promisify(execFile);

/** Options of {@link setupRealServer}. */
export interface RealServerOptions {
  /** The virtual IP(s) this server receives traffic for. */
  readonly vip: string | readonly string[];
  /** `'route'` (`'dr'`): VIP on `lo`. `'tunnel'` (`'tun'`): VIP on `tunl0`, which needs the ipip module. */
  readonly method: 'route' | 'dr' | 'tunnel' | 'tun';
}

/** A prepared real server; {@link RealServerSetup.teardown} undoes every change. */
export interface RealServerSetup extends AsyncDisposable {
  /** The VIPs configured. */
  readonly vips: readonly string[];
  /** The device holding them (`lo` or `tunl0`). */
  readonly device: string;
  /** Removes the VIPs and restores every sysctl to its previous value. */
  teardown(): Promise<void>;
}

function sysctlPath(name: string): string {
  return `/proc/sys/${name.replaceAll('.', '/')}`;
}

async function ip(args: string[]): Promise<void> {
  try {
    await run('ip', args);
  } catch (err) {
    const e = err as { stderr?: string; code?: string };
    if (e.code === 'ENOENT') throw new LvsError('ENOTSUP', 'the ip command (iproute2) is not installed', { cause: err });
    throw new LvsError('EINVAL', `ip ${args.join(' ')}: ${(e.stderr ?? String(err)).trim()}`, { cause: err });
  }
}

/**
 * Configures this host as an LVS/DR or LVS/TUN real server for the given VIPs. Needs root (or
 * CAP_NET_ADMIN and write access to /proc/sys).
 *
 * @throws {@link LvsError} `EINVAL` for a bad VIP or a failing `ip` command; `ENOTSUP` when the
 *   tunnel device or iproute2 is missing.
 * @example
 * ```ts
 * import { setupRealServer } from 'lvs';
 *
 * await using rs = await setupRealServer({ vip: '10.10.36.11', method: 'dr' });
 * // … serve traffic for 10.10.36.11 …
 * // (teardown runs when the scope ends, or call rs.teardown())
 * ```
 */
export async function setupRealServer(options: RealServerOptions): Promise<RealServerSetup> {
  const vips = typeof options.vip === 'string' ? [options.vip] : [...options.vip];
  if (vips.length === 0) throw new LvsError('EINVAL', 'at least one VIP is needed');
  for (const v of vips) {
    if (!isIPv4(v) && !isIPv6(v)) throw new LvsError('EINVAL', `invalid VIP \`${v}'`);
  }
  const tunnel = options.method === 'tunnel' || options.method === 'tun';
  const device = tunnel ? 'tunl0' : 'lo';
  if (tunnel && !existsSync('/sys/class/net/tunl0')) {
    throw new LvsError(
      'ENOTSUP',
      'no tunl0 device: this kernel has no ipip module loaded (modprobe ipip), so IP-in-IP must be decapsulated in user space',
    );
  }
  const sysctls: [string, string][] = [
    [`net.ipv4.conf.${device}.arp_ignore`, '1'],
    [`net.ipv4.conf.${device}.arp_announce`, '2'],
    ['net.ipv4.conf.all.arp_ignore', '1'],
    ['net.ipv4.conf.all.arp_announce', '2'],
  ];
  if (tunnel) sysctls.push([`net.ipv4.conf.${device}.rp_filter`, '0'], ['net.ipv4.conf.all.rp_filter', '0']);

  const saved: [string, string][] = [];
  const added: string[] = [];
  const undo = async (): Promise<void> => {
    for (const v of added.splice(0).reverse()) {
      await ip(['addr', 'del', isIPv6(v) ? `${v}/128` : `${v}/32`, 'dev', device]).catch(() => undefined);
    }
    for (const [name, value] of saved.splice(0).reverse()) {
      try {
        writeFileSync(sysctlPath(name), value);
      } catch {
        // Best effort: the namespace or device may be gone already.
      }
    }
  };
  try {
    for (const [name, value] of sysctls) {
      const path = sysctlPath(name);
      saved.push([name, readFileSync(path, 'utf8').trim()]);
      writeFileSync(path, value);
    }
    if (tunnel) await ip(['link', 'set', device, 'up']);
    for (const v of vips) {
      const args = isIPv6(v)
        ? ['-6', 'addr', 'add', `${v}/128`, 'dev', device]
        : ['addr', 'add', `${v}/32`, 'brd', v, 'dev', device, ...(tunnel ? [] : ['label', 'lo:0'])];
      await ip(args);
      added.push(v);
    }
  } catch (err) {
    await undo();
    if (err instanceof LvsError) throw err;
    throw new LvsError('EINVAL', `cannot configure the real server: ${(err as Error).message}`, { cause: err });
  }
  let done = false;
  const teardown = async (): Promise<void> => {
    if (done) return;
    done = true;
    await undo();
  };
  return { vips, device, teardown, [Symbol.asyncDispose]: teardown };
}
