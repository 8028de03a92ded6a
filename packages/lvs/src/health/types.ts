/**
 * Health-check specifications with keepalived's vocabulary: virtual servers, their real servers
 * and the checkers that decide whether each real server takes traffic. Times are in seconds, as
 * in keepalived.conf.
 * @module
 */
import type { ForwardingAlias, ForwardingMethod, ServiceOptions, TunnelOptions } from '../types.js';

/**
 * Timing and retry settings. Each may be given on a checker, its real server or its virtual
 * server; the most specific wins, then keepalived's default for the checker kind.
 */
export interface CheckTiming {
  /** Seconds between checks (`delay_loop`); default 60. */
  readonly delayLoop?: number;
  /** Seconds an attempt may take to connect and each read may wait (`connect_timeout`); default 5. */
  readonly connectTimeout?: number;
  /**
   * Failed attempts retried before an up checker goes down (`retry`): it goes down after
   * `retry + 1` consecutive failures. Default 1; 0 for `MISC_CHECK`.
   */
  readonly retry?: number;
  /** Seconds between retries (`delay_before_retry`); default 3 for HTTP/SSL, else 1. */
  readonly delayBeforeRetry?: number;
  /** Upper bound in seconds of the random delay added to the first check (`warmup`); default delayLoop. */
  readonly warmup?: number;
  /** Start in the failed state until a check succeeds (`alpha`); default false. */
  readonly alpha?: boolean;
}

/** Where a network checker connects (keepalived's `connect_ip`, `connect_port`, `bindto`, `bind_port`). */
export interface ConnectOptions {
  /** Address to check instead of the real server's (`connect_ip`). */
  readonly connectIp?: string;
  /** Port to check instead of the real server's (`connect_port`). */
  readonly connectPort?: number;
  /** Local address to connect from (`bindto`). */
  readonly bindto?: string;
  /** Local port to connect from (`bind_port`). */
  readonly bindPort?: number;
}

/** `TCP_CHECK`: succeeds when a TCP connection is established within connectTimeout. */
export interface TcpCheckSpec extends CheckTiming, ConnectOptions {
  /** Checker kind. */
  readonly type: 'TCP_CHECK';
}

/**
 * One URL of an `HTTP_GET`/`SSL_GET` checker. The response must carry an allowed status and, if
 * `digest` is set, a body whose MD5 matches.
 */
export interface HttpUrlSpec {
  /** Request path (`path`), sent as is. */
  readonly path: string;
  /** MD5 of the body as 32 hex characters (`digest`), as `genhash` prints it. */
  readonly digest?: string;
  /**
   * Allowed status codes (`status_code`): numbers and `'200-299'` ranges, 100..599. Default
   * 200-299.
   */
  readonly statusCode?: readonly (number | string)[];
  /** Host header for this URL (`virtualhost`). */
  readonly virtualhost?: string;
}

/** HTTP version and connection header of the request (`http_protocol`). */
export type HttpProtocol = '1.0' | '1.0C' | '1.1';

/** `HTTP_GET` / `SSL_GET`: GET each URL in turn, one per delayLoop. */
export interface HttpCheckSpec extends CheckTiming, ConnectOptions {
  /** Checker kind: plain HTTP or HTTP over TLS. */
  readonly type: 'HTTP_GET' | 'SSL_GET';
  /** URLs checked in rotation; at least one. */
  readonly urls: readonly HttpUrlSpec[];
  /** `'1.0'` (default), `'1.0C'` (1.0 with `Connection: close`) or `'1.1'` (with `Connection: close`). */
  readonly httpProtocol?: HttpProtocol;
  /** Host header (`virtualhost`) unless a URL has its own. */
  readonly virtualhost?: string;
  /** After a recovery, verify the remaining URLs back to back instead of one per delayLoop. */
  readonly fastRecovery?: boolean;
  /** Send the Host (virtualhost) as TLS SNI (`enable_sni`), SSL_GET only. */
  readonly enableSni?: boolean;
}

/** `SMTP_CHECK`: expects a `220` banner, sends `HELO`, expects `250`, then `QUIT`. */
export interface SmtpCheckSpec extends CheckTiming, ConnectOptions {
  /** Checker kind. */
  readonly type: 'SMTP_CHECK';
  /** Name sent with HELO (`helo_name`); default `smtpchecker.keepalived.org`. */
  readonly heloName?: string;
}

/**
 * `MISC_CHECK`: runs a command (no shell); exit 0 is success. With `dynamic`, exit 1 is failure
 * and exit 2..255 is success with weight `code - 2`.
 */
export interface MiscCheckSpec extends CheckTiming {
  /** Checker kind. */
  readonly type: 'MISC_CHECK';
  /**
   * The command (`misc_path`): a command line split into arguments as keepalived splits it
   * (quotes group, backslash escapes), or an argument vector.
   */
  readonly path: string | readonly string[];
  /** Seconds before the command is sent SIGTERM, then SIGKILL 2 s later (`misc_timeout`); default the virtual server's delayLoop. */
  readonly timeout?: number;
  /** Exit codes set the weight (`misc_dynamic`). */
  readonly dynamic?: boolean;
}

/** What a check function learns about the server it checks. */
export interface CheckTarget {
  /** Address to check (the real server's or `connectIp`). */
  readonly host: string;
  /** Port to check (the real server's, the service's, or `connectPort`). */
  readonly port: number;
  /** The real server as configured. */
  readonly server: string;
  /** Aborted when the attempt times out (after connectTimeout) or the monitor stops. */
  readonly signal: AbortSignal;
}

/**
 * The result of a check function: `true` success, `false` failure, or a number for success with
 * that weight (like `misc_dynamic`). A thrown error or rejection is a failure.
 */
export type CheckFunctionResult = boolean | number;

/** A check written in JavaScript; it must settle within connectTimeout. */
export interface JsCheckSpec extends CheckTiming {
  /** Checker kind. */
  readonly type: 'JS';
  /** The check. */
  readonly check: (target: CheckTarget) => CheckFunctionResult | Promise<CheckFunctionResult>;
  /** Port given to the function when the real server has none; default the service's port. */
  readonly connectPort?: number;
  /** Host given to the function instead of the real server's address. */
  readonly connectIp?: string;
}

/** Every kind of checker, told apart by `type`. */
export type CheckerSpec = TcpCheckSpec | HttpCheckSpec | SmtpCheckSpec | MiscCheckSpec | JsCheckSpec;

/**
 * A command run on a state change: a command line split like keepalived's notify scripts
 * (quotes group, backslash escapes, no shell), or an argument vector.
 */
export type NotifyCommand = string | readonly string[];

/** A real server and how it is checked (keepalived's `real_server` block). */
export interface RealServerHealth extends CheckTiming {
  /** `'ip:port'`, `'ip'` (the service's port), `'[ipv6]:port'`. */
  readonly address: string;
  /** Weight (`weight`); default the virtual server's `weight`, else 1. */
  readonly weight?: number;
  /** Forwarding method (`lvs_method`); default the virtual server's, else `'masq'` as in keepalived. */
  readonly method?: ForwardingMethod | ForwardingAlias;
  /** Tunnel encapsulation for tunnel servers. */
  readonly tunnel?: TunnelOptions;
  /** Upper connection threshold (`uthreshold`). */
  readonly upperThreshold?: number;
  /** Lower connection threshold (`lthreshold`). */
  readonly lowerThreshold?: number;
  /** Keep the server with weight 0 instead of removing it when down (`inhibit_on_failure`). */
  readonly inhibitOnFailure?: boolean;
  /** Run when the server comes up (`notify_up`). */
  readonly notifyUp?: NotifyCommand;
  /** Run when the server goes down (`notify_down`). */
  readonly notifyDown?: NotifyCommand;
  /** Default Host header of HTTP checkers (`virtualhost`). */
  readonly virtualhost?: string;
  /**
   * Checkers; the server is alive only while all of them are up. With none it is always
   * alive, as in keepalived.
   */
  readonly checkers?: readonly CheckerSpec[];
}

/** The server that takes the traffic while quorum is lost (`sorry_server`). */
export interface SorryServerSpec {
  /** `'ip:port'` or `'ip'`. */
  readonly address: string;
  /** Forwarding method (`sorry_server_lvs_method`); default the virtual server's. */
  readonly method?: ForwardingMethod | ForwardingAlias;
  /** Weight; default 1. */
  readonly weight?: number;
  /** Keep it configured with weight 0 while unused (`sorry_server_inhibit`). */
  readonly inhibit?: boolean;
}

/** A virtual server with health-checked real servers (keepalived's `virtual_server` block). */
export interface VirtualServerHealth extends CheckTiming {
  /** A name for events and logs; default the first service's address or `FWM n`. */
  readonly name?: string;
  /**
   * The IPVS service, or several for a `virtual_server_group` (one per address and fwmark):
   * each gets every real server, and each real server is checked once.
   */
  readonly service: ServiceOptions | readonly ServiceOptions[];
  /** Real servers. */
  readonly realServers: readonly RealServerHealth[];
  /** Default real-server weight (`weight`); default 1. */
  readonly weight?: number;
  /** Default forwarding method (`lvs_method`); default `'masq'` (keepalived's NAT). */
  readonly method?: ForwardingMethod | ForwardingAlias;
  /** Default for real servers (`inhibit_on_failure`). */
  readonly inhibitOnFailure?: boolean;
  /** Default Host header of HTTP checkers (`virtualhost`). */
  readonly virtualhost?: string;
  /** Minimum live weight for the service to be up (`quorum`); default 1. */
  readonly quorum?: number;
  /** Quorum comes up at quorum + hysteresis and goes down below quorum − hysteresis; default 0. */
  readonly hysteresis?: number;
  /** Run when quorum is gained (`quorum_up`). */
  readonly quorumUp?: NotifyCommand;
  /** Run when quorum is lost (`quorum_down`). */
  readonly quorumDown?: NotifyCommand;
  /** Server that replaces the real servers while quorum is lost. */
  readonly sorryServer?: SorryServerSpec;
  /** On stop, run notify_down for live servers and quorum_down (`omega`). */
  readonly omega?: boolean;
}
