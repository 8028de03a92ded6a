/**
 * SMTP_CHECK: expect a `220` greeting, send `HELO name`, expect `250`, send `QUIT`.
 * @module
 */
import { CheckFailure, connect, type ConnectParams, readToEnd } from './tcp.js';

/** keepalived's default HELO name. */
export const DEFAULT_HELO = 'smtpchecker.keepalived.org';

/**
 * One SMTP_CHECK attempt.
 *
 * @throws {@link CheckFailure} when the server's replies are not 220 then 250.
 */
export async function smtpCheck(p: ConnectParams, heloName: string = DEFAULT_HELO): Promise<void> {
  const sock = await connect(p);
  let buffered = '';
  const state: { stage: 'banner' | 'helo' | 'done' } = { stage: 'banner' };
  let failure: CheckFailure | undefined;
  await readToEnd(sock, p, (chunk) => {
    buffered += chunk.toString('latin1');
    if (buffered.length > 16 * 1024) buffered = buffered.slice(-1024);
    // A reply ends with a line "NNN text" (continuation lines are "NNN-text").
    for (;;) {
      const nl = buffered.indexOf('\n');
      if (nl < 0) return false;
      const line = buffered.slice(0, nl).replace(/\r$/, '');
      buffered = buffered.slice(nl + 1);
      if (/^\d{3}-/.test(line)) continue;
      const code = line.slice(0, 3);
      if (state.stage === 'banner') {
        if (code !== '220') {
          failure = new CheckFailure(`SMTP greeting ${line}`);
          return true;
        }
        sock.write(`HELO ${heloName}\r\n`);
        state.stage = 'helo';
      } else if (state.stage === 'helo') {
        if (code !== '250') {
          failure = new CheckFailure(`SMTP HELO reply ${line}`);
          return true;
        }
        sock.write('QUIT\r\n');
        state.stage = 'done';
      } else return true; // the reply to QUIT: the dialogue is over
    }
  });
  if (failure) throw failure;
  if (state.stage !== 'done') throw new CheckFailure('SMTP dialogue cut short');
}
