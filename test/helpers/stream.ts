// What the failover tests share: bounded waiting, and a TCP echo service with a client that keeps
// one connection busy, so a test can see whether an established connection survives.

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `f` every 100 ms until it returns true or `ms` passes; the last answer is returned. */
export async function until(ms: number, f: () => boolean): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (f()) return true;
    await sleep(100);
  }
  return f();
}

/** The echo service's port on every real server. */
export const ECHO_PORT = 7000;

/** `node -e` script for a real server (argv[1]: its name): echoes every chunk prefixed with `name:`. */
export const ECHO_SERVER = `const n=process.argv[1];require('net').createServer(s=>{s.on('error',()=>{});s.on('data',d=>s.write(n+':'+d))}).listen(${ECHO_PORT},()=>console.log('listening'))`;

/**
 * `node -e` script for the client (argv[1]: the VIP): one connection, a numbered line every 100 ms,
 * prints what comes back; `ERROR code` or `CLOSED` (and exit 1) if the connection breaks.
 */
export const STREAM_CLIENT = `const s=require('net').connect(${ECHO_PORT},process.argv[1]);let i=0;s.on('connect',()=>{console.log('connected');setInterval(()=>s.write('line'+(i++)+'\\n'),100)});s.on('data',d=>process.stdout.write(String(d)));s.on('error',e=>{console.log('ERROR '+e.code);process.exit(1)});s.on('close',()=>{console.log('CLOSED');process.exit(1)})`;

/** The real server that answered the last chunk of a stream client's output (`rs2`), if any. */
export function lastServer(output: string): string | undefined {
  return [...output.matchAll(/(rs\d+):line/g)].pop()?.[1];
}
