/**
 * What a checker does with the result of one attempt, as keepalived 2.2.7 does it: whether the
 * checker reports UP or DOWN, and when it runs next. Pure: the monitor owns the clock and I/O.
 * @module
 */

/** The per-checker counters keepalived keeps (`is_up`, `has_run`, `retry_it`) and its timing. */
export interface CheckerCounters {
  /** Checker considered up. */
  isUp: boolean;
  /** At least one result has been processed. */
  hasRun: boolean;
  /** Failures retried so far. */
  retryIt: number;
  /** Retries before an up checker goes down. */
  readonly retry: number;
  /** Milliseconds between checks. */
  readonly delayLoop: number;
  /** Milliseconds between retries. */
  readonly delayBeforeRetry: number;
}

/** Reports a checker result upwards (keepalived's `update_svr_checker_state`). */
export type Report = (alive: boolean) => void;

/** The counters a checker starts with: alpha checkers start failed; others fail on the first error. */
export function initialCounters(
  alpha: boolean,
  timing: { retry: number; delayLoop: number; delayBeforeRetry: number },
): CheckerCounters {
  // Without alpha, retry_it starts at retry so the first failed check takes the server down.
  return { isUp: !alpha, hasRun: false, retryIt: alpha ? 0 : timing.retry, ...timing };
}

/**
 * One result of a TCP-style checker (TCP_CHECK, SMTP_CHECK, JS): keepalived's `tcp_epilog`.
 * @returns milliseconds until the next attempt, counted from the end of this one
 */
export function tcpEpilog(c: CheckerCounters, success: boolean, report: Report): number {
  let delay: number;
  if (success || c.retryIt >= c.retry) {
    delay = c.delayLoop;
    c.retryIt = 0;
    if (success && (!c.isUp || !c.hasRun)) report(true);
    else if (!success && (c.isUp || !c.hasRun)) report(false);
  } else {
    delay = c.delayBeforeRetry;
    c.retryIt++;
  }
  c.hasRun = true;
  return delay;
}

/**
 * One result of a MISC_CHECK (or a JS check): success or failure after any weight update.
 * @returns milliseconds until the next attempt, counted from the START of this one
 */
export function miscEpilog(c: CheckerCounters, success: boolean, report: Report): number {
  if (success) {
    c.retryIt = 0;
    if (!c.isUp || !c.hasRun) report(true);
  } else if (c.isUp || !c.hasRun) {
    if (c.retryIt < c.retry) c.retryIt++;
    else {
      c.retryIt = 0;
      report(false);
    }
  }
  c.hasRun = true;
  return c.retryIt ? c.delayBeforeRetry : c.delayLoop;
}

/** HTTP_GET/SSL_GET state besides the counters: the URL rotation. */
export interface HttpCounters extends CheckerCounters {
  /** Index of the URL checked next; null once the last one has succeeded. */
  urlIt: number | null;
  /** Index of the URL that failed the checker, while it is down. */
  failedUrl: number | null;
  /** How many URLs there are. */
  readonly urlCount: number;
  /** Check the remaining URLs back to back while recovering. */
  readonly fastRecovery: boolean;
}

/** Starting HTTP state. */
export function initialHttpCounters(
  alpha: boolean,
  timing: { retry: number; delayLoop: number; delayBeforeRetry: number },
  urlCount: number,
  fastRecovery: boolean,
): HttpCounters {
  return { ...initialCounters(alpha, timing), urlIt: 0, failedUrl: null, urlCount, fastRecovery };
}

/** The URL index the next attempt fetches. */
export function currentUrl(c: HttpCounters): number {
  return c.urlIt ?? 0;
}

type Method = 'new' | 'retry' | 'failed';

/** keepalived's HTTP `epilog`: NEW after a success, RETRY after a failure counted, FAILED when already down. */
function httpEpilog(c: HttpCounters, method: Method, report: Report): number {
  if (method === 'new') {
    c.urlIt = c.urlIt === null || c.urlIt + 1 >= c.urlCount ? null : c.urlIt + 1;
    c.retryIt = 0;
  } else if (method === 'retry') c.retryIt++;

  if (method === 'new' && c.urlIt === null && c.failedUrl === null) {
    // Every URL has succeeded in turn.
    if (!c.isUp || !c.hasRun) {
      report(true);
      c.hasRun = true;
    }
    c.urlIt = 0;
    c.retryIt = 0;
  } else if (method === 'retry' && c.retryIt > c.retry) {
    if (c.isUp || !c.hasRun) report(false);
    c.failedUrl = c.urlIt;
  } else if (method === 'new' && c.failedUrl !== null) {
    // The failed URL answers again: verify all of them from the first.
    c.failedUrl = null;
    c.urlIt = 0;
    c.retryIt = 0;
  }

  let delay: number;
  if (method === 'new') {
    delay = c.delayLoop;
    if (!c.hasRun) c.retryIt = c.retry;
  } else if (c.failedUrl !== null) delay = Math.max(c.delayBeforeRetry, c.delayLoop);
  else delay = c.delayBeforeRetry;

  if (c.fastRecovery && (!c.hasRun || (!c.isUp && c.failedUrl === null))) return 0;
  return delay;
}

/**
 * One HTTP/SSL attempt's result.
 * @returns milliseconds until the next attempt, counted from the end of this one
 */
export function httpResult(c: HttpCounters, success: boolean, report: Report): number {
  if (success) return httpEpilog(c, 'new', report);
  // keepalived's timeout_epilog: retry while up (or before the first result), else just wait.
  if (c.isUp || !c.hasRun) {
    c.hasRun = true;
    return httpEpilog(c, 'retry', report);
  }
  return httpEpilog(c, 'failed', report);
}
