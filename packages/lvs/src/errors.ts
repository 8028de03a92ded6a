/**
 * Errors thrown by lvs. Every failure of a director operation is an {@link LvsError} with a
 * stable errno-style {@link LvsError.code | code} and the message ipvsadm would print.
 * @module
 */

/**
 * The codes an {@link LvsError} can carry.
 *
 * - `EEXIST`: the service or real server already exists.
 * - `ESRCH`: no such service ("No such service", "Service not defined").
 * - `ENOENT`: no such real server, scheduler or persistence engine.
 * - `EINVAL`: malformed or disallowed input.
 * - `ERANGE`: a number out of range (weight, thresholds).
 * - `EAFNOSUPPORT`: address family not supported for the operation.
 * - `ENOMEM`: a table is full.
 * - `ENOTSUP`: the operation needs another kind of director (e.g. a manual clock).
 * - `ENODEV`: a network interface is missing or unusable.
 * - `EPERM`: the packet path needs privileges (root, or CAP_NET_RAW and CAP_NET_ADMIN).
 * - `EBUSY`: the resource is taken (a second VRRP speaker on one director).
 * - `EIO`: a socket or thread of the packet path failed.
 * - `EPANIC`: an internal error in the native core (a bug: please report it).
 */
export type LvsErrorCode =
  | 'EEXIST'
  | 'ESRCH'
  | 'ENOENT'
  | 'EINVAL'
  | 'ERANGE'
  | 'EAFNOSUPPORT'
  | 'ENOMEM'
  | 'ENOTSUP'
  | 'ENODEV'
  | 'EPERM'
  | 'EBUSY'
  | 'EIO'
  | 'EPANIC';

const CODES: ReadonlySet<string> = new Set<LvsErrorCode>([
  'EEXIST',
  'ESRCH',
  'ENOENT',
  'EINVAL',
  'ERANGE',
  'EAFNOSUPPORT',
  'ENOMEM',
  'ENOTSUP',
  'ENODEV',
  'EPERM',
  'EBUSY',
  'EIO',
  'EPANIC',
]);

/**
 * An error from lvs, with a code to match on and an operator-readable message.
 *
 * @example
 * ```ts
 * try {
 *   director.addService({ protocol: 'tcp', address: '10.0.0.1:80' });
 * } catch (err) {
 *   if (err instanceof LvsError && err.code === 'EEXIST') console.log('already there');
 *   else throw err;
 * }
 * ```
 */
export class LvsError extends Error {
  /** The errno-style code. */
  readonly code: LvsErrorCode;

  /**
   * @param code - the errno-style code
   * @param message - what went wrong, in ipvsadm's words where ipvsadm has words for it
   * @param options - the underlying error, if any
   */
  constructor(code: LvsErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'LvsError';
    this.code = code;
  }
}

/**
 * Runs a call into the native binding, turning its errors into {@link LvsError}s.
 * @internal
 */
export function callNative<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw toLvsError(err);
  }
}

/**
 * Converts anything thrown by the binding into an {@link LvsError}.
 * @internal
 */
export function toLvsError(err: unknown): LvsError {
  if (err instanceof LvsError) return err;
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code;
    if (typeof code === 'string' && CODES.has(code)) {
      return new LvsError(code as LvsErrorCode, err.message, { cause: err });
    }
    // napi-rs reports argument conversion failures (a number where a string belongs) this way.
    return new LvsError('EINVAL', err.message, { cause: err });
  }
  return new LvsError('EINVAL', String(err));
}
