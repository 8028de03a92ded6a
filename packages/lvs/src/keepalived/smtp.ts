/**
 * keepalived's SMTP alerts (`notification_email`, `smtp_server`): the message keepalived 2.2.7
 * writes and the client dialogue it runs (`HELO`, `MAIL FROM`, one `RCPT TO` per address,
 * `DATA`, headers and body, `QUIT`), one alert at a time from a bounded queue.
 * @module
 */
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import type { SmtpServer } from './types.js';

/** One alert: the Subject header and the body line. */
export interface SmtpAlert {
  /** The Subject header, e.g. `[LVS_DEVEL] Realserver [10.0.0.4]:tcp:80 of virtual server [10.0.0.1]:tcp:80 - DOWN`. */
  readonly subject: string;
  /** The body, e.g. `=> TCP CHECK failed on service <=`. */
  readonly body: string;
}

/** Where and how alerts are mailed: keepalived's `global_defs` mail keywords. */
export interface SmtpAlerterOptions {
  /** `smtp_server`; no server means nothing is sent. */
  readonly server?: SmtpServer;
  /** `notification_email`; no address means nothing is sent. */
  readonly to: readonly string[];
  /** `notification_email_from`. */
  readonly from: string;
  /** `smtp_helo_name`; default `localhost`, as keepalived when it has none. */
  readonly heloName?: string;
  /** `smtp_connect_timeout` in ms: bounds the connection and every reply; default 30000. */
  readonly connectTimeout?: number;
  /** Alerts waiting beyond the one being sent; the oldest is dropped on overflow. Default 64. */
  readonly maxQueue?: number;
  /** The clock of the Date header; default `new Date()`. */
  readonly now?: () => Date;
}

/** The events of a {@link SmtpAlerter}. */
export interface SmtpAlerterEvents {
  /** A line for the log, in keepalived's words where it has them (failures included). */
  log: [string];
  /** The server accepted an alert (`250` after the message). */
  sent: [SmtpAlert];
  /** A failure outside the SMTP dialogue; emitted only when listened to. */
  error: [Error];
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** keepalived's receive buffer: a longer reply without a line end ends the dialogue. */
const REPLY_MAX = 1024;
const two = (n: number): string => String(n).padStart(2, '0');

/**
 * The Date header keepalived writes: `strftime("%a, %d %b %Y %H:%M:%S %z")` in local time.
 *
 * @example
 * ```ts
 * rfc822Date(new Date()); // 'Sun, 22 Nov 2026 05:17:20 +0000'
 * ```
 */
export function rfc822Date(d: Date): string {
  const off = -d.getTimezoneOffset();
  const abs = Math.abs(off);
  const zone = `${off < 0 ? '-' : '+'}${two(Math.floor(abs / 60))}${two(abs % 60)}`;
  const time = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  return `${DAYS[d.getDay()]}, ${two(d.getDate())} ${MONTHS[d.getMonth()]} ${d.getFullYear()} ${time} ${zone}`;
}

/** Header values must stay on one line whatever the configuration holds. */
const oneLine = (s: string): string => s.replace(/[\r\n]+/g, ' ');

/**
 * What keepalived sends after `DATA` was accepted: the headers, a blank line, the body and the
 * end-of-data mark, exactly as keepalived 2.2.7 formats them.
 *
 * @example
 * ```ts
 * const data = smtpMessage(
 *   { from: 'keepalived@lb1', to: ['ops@example.com'] },
 *   {
 *     subject: '[lb1] VRRP Instance VI_1 - Entering MASTER state',
 *     body: '=> VRRP Instance is now owning VRRP VIPs <=',
 *   },
 *   new Date(),
 * );
 * ```
 */
export function smtpMessage(
  opts: Pick<SmtpAlerterOptions, 'from' | 'to'>,
  alert: SmtpAlert,
  date: Date,
): string {
  return (
    `Date: ${rfc822Date(date)}\r\nFrom: ${oneLine(opts.from)}\r\nSubject: ${oneLine(alert.subject)}\r\n` +
    `X-Mailer: Keepalived\r\nTo: ${oneLine(opts.to.join(', '))}\r\n\r\n${alert.body}\r\n\r\n.\r\n`
  );
}

/** keepalived's `inet_sockaddrtopair`: how the server is named in log lines. */
function hostPair(server: SmtpServer): string {
  return `[${server.host}]:${server.port}`;
}

interface Step {
  /** What is sent once the expected reply came (undefined: the greeting is awaited first). */
  readonly send?: string;
  /** The reply code that moves on. */
  readonly expect: number;
  /** The command's name in keepalived's error line. */
  readonly name: string;
}

/**
 * Mails keepalived's alerts through an SMTP server, one at a time in order. A server that is
 * unreachable, slow or refusing never blocks the caller: every connection and every reply is
 * bounded by `connectTimeout`, failures become `log` lines, and the queue is bounded (the oldest
 * alert is dropped, with a log line, when it overflows). Without a server or recipients nothing
 * is queued.
 *
 * @example
 * ```ts
 * const alerter = new SmtpAlerter({
 *   server: { host: '192.168.200.1', port: 25 },
 *   to: ['acassen@firewall.loc'],
 *   from: 'Alexandre.Cassen@firewall.loc',
 *   connectTimeout: 30_000,
 * });
 * alerter.on('log', (line) => console.log(line));
 * alerter.send({ subject: '[LVS_DEVEL] test', body: '=> hello <=' });
 * await alerter.close();
 * ```
 */
export class SmtpAlerter extends EventEmitter<SmtpAlerterEvents> {
  readonly #opts: SmtpAlerterOptions;
  readonly #queue: SmtpAlert[] = [];
  readonly #maxQueue: number;
  #busy: Promise<void> | undefined;
  #socket: net.Socket | undefined;
  #closed = false;

  /**
   * Nothing is sent until {@link SmtpAlerter.send}.
   *
   * @example
   * ```ts
   * const alerter = new SmtpAlerter({
   *   server: { host: '127.0.0.1', port: 25 },
   *   to: ['root@localhost'],
   *   from: 'keepalived@lb1',
   * });
   * ```
   */
  constructor(options: SmtpAlerterOptions) {
    super();
    this.#opts = options;
    this.#maxQueue = Math.max(0, Math.floor(options.maxQueue ?? 64));
  }

  /**
   * Whether alerts are mailed at all: a server and at least one recipient are configured.
   *
   * @example
   * ```ts
   * if (!alerter.enabled) console.log('no smtp_server or notification_email: alerts are not mailed');
   * ```
   */
  get enabled(): boolean {
    return this.#opts.server !== undefined && this.#opts.to.length > 0;
  }

  /**
   * Queues an alert; it is mailed after those before it. Returns at once.
   *
   * @example
   * ```ts
   * alerter.send({ subject: '[lb1] Virtualserver [10.0.0.1]:tcp:80 - DOWN', body: '=> Lost quorum 1+0=1 <= 0 <=' });
   * ```
   */
  send(alert: SmtpAlert): void {
    if (this.#closed || !this.enabled) return;
    this.#queue.push(alert);
    // The one being sent is not in the queue; beyond maxQueue waiting, the oldest goes.
    while (this.#queue.length > this.#maxQueue) {
      const dropped = this.#queue.shift();
      this.emit('log', `SMTP alert queue full (${this.#maxQueue}): dropping alert '${dropped?.subject ?? ''}'`);
    }
    if (this.#busy === undefined) this.#busy = this.#drain();
  }

  /**
   * Resolves when every queued alert has been mailed or has failed.
   *
   * @example
   * ```ts
   * await alerter.idle();
   * ```
   */
  async idle(): Promise<void> {
    while (this.#busy !== undefined) await this.#busy;
  }

  /**
   * Stops: queued alerts are dropped and a dialogue in progress is cut.
   *
   * @example
   * ```ts
   * await alerter.close();
   * ```
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#queue.length = 0;
    this.#socket?.destroy();
    await this.idle();
  }

  async #drain(): Promise<void> {
    try {
      for (let alert = this.#queue.shift(); alert !== undefined && !this.#closed; alert = this.#queue.shift()) {
        try {
          if (await this.#mail(alert)) this.emit('sent', alert);
        } catch (err) {
          if (this.listenerCount('error') > 0) this.emit('error', err instanceof Error ? err : new Error(String(err)));
        }
      }
    } finally {
      this.#busy = undefined;
    }
  }

  /** One SMTP dialogue; true when the server accepted the message. */
  #mail(alert: SmtpAlert): Promise<boolean> {
    const server = this.#opts.server;
    if (server === undefined) return Promise.resolve(false);
    const where = hostPair(server);
    const timeout = this.#opts.connectTimeout ?? 30_000;
    const steps: Step[] = [
      { expect: 220, name: '(E)SMTP' },
      { send: `HELO ${oneLine(this.#opts.heloName ?? 'localhost')}\r\n`, expect: 250, name: 'HELO' },
      { send: `MAIL FROM:<${oneLine(this.#opts.from)}>\r\n`, expect: 250, name: 'MAIL' },
      ...this.#opts.to.map((to) => ({ send: `RCPT TO:<${oneLine(to)}>\r\n`, expect: 250, name: 'RCPT' })),
      { send: 'DATA\r\n', expect: 354, name: 'DATA' },
      { expect: 250, name: 'BODY' }, // its text is built when sent, for the Date header
      { send: 'QUIT\r\n', expect: 221, name: 'QUIT' },
    ];
    const bodyStep = steps.length - 2;
    return new Promise((resolve) => {
      let stage = 0;
      let connected = false;
      let accepted = false;
      let quitting = false;
      let buffer = '';
      let done = false;
      const socket = net.connect({ host: server.host, port: server.port });
      this.#socket = socket;
      let timer: NodeJS.Timeout | undefined;
      const finish = (): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.destroy();
        if (this.#socket === socket) this.#socket = undefined;
        resolve(accepted);
      };
      const arm = (): void => {
        clearTimeout(timer);
        timer = setTimeout(onTimeout, timeout);
      };
      const write = (text: string): void => {
        socket.write(text);
        arm();
      };
      const quit = (): void => {
        // keepalived sends QUIT after a failure; whatever comes back then ends the dialogue.
        quitting = true;
        stage = steps.length - 1;
        write('QUIT\r\n');
      };
      const onTimeout = (): void => {
        if (!connected) {
          this.emit('log', `Timeout opening connection to remote SMTP server ${where}.`);
          finish();
          return;
        }
        this.emit('log', `Timeout reading data to remote SMTP server ${where}.`);
        if (quitting || stage === steps.length - 1) finish();
        else quit();
      };
      const onReply = (code: number): void => {
        const step = steps[stage] as Step;
        if (quitting) {
          finish();
          return;
        }
        if (code !== step.expect) {
          this.emit('log', `Error processing ${step.name} cmd on SMTP server ${where}. SMTP status code = ${code}`);
          if (stage === steps.length - 1) finish();
          else quit();
          return;
        }
        if (stage === bodyStep) {
          accepted = true;
          this.emit('log', 'SMTP alert successfully sent.');
        }
        if (stage === steps.length - 1) {
          finish();
          return;
        }
        stage++;
        const next = steps[stage] as Step;
        const date = this.#opts.now?.() ?? new Date();
        write(stage === bodyStep ? smtpMessage(this.#opts, alert, date) : (next.send ?? ''));
      };
      arm();
      socket.setEncoding('latin1');
      socket.on('connect', () => {
        connected = true;
        arm();
      });
      socket.on('error', () => {
        if (done) return;
        this.emit(
          'log',
          connected ? `Error reading data from remote SMTP server ${where}.` : `SMTP connection ERROR to ${where}.`,
        );
        finish();
      });
      socket.on('close', () => {
        if (done) return;
        if (connected && !quitting) this.emit('log', `Remote SMTP server ${where} has closed the connection.`);
        finish();
      });
      socket.on('data', (chunk: string) => {
        if (done) return;
        buffer += chunk;
        // A reply is complete at its last line (`250 ...`); `250-...` lines continue it.
        for (let end = buffer.indexOf('\r\n'); end !== -1 && !done; end = buffer.indexOf('\r\n')) {
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (line[3] === '-') continue;
          const code = /^\d{3}/.test(line) ? Number(line.slice(0, 3)) : -1;
          onReply(code);
        }
        if (!done && buffer.length >= REPLY_MAX) {
          this.emit('log', `Received buffer from remote SMTP server ${where} overflow our get read buffer length.`);
          buffer = '';
          if (quitting) finish();
          else quit();
        } else if (!done) arm();
      });
    });
  }
}
