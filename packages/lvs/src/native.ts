/**
 * Loads the native binding built by `napi build` into `native/`.
 * @internal
 * @module
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The generated binding. @internal */
export const native = require('../native/binding.cjs') as typeof import('../native/binding.cjs');
