/**
 * Health checking with keepalived's semantics: checker specs, the {@link HealthMonitor} that
 * applies their results to a director, and the clocks it runs on.
 * @module
 */
export { type HealthClock, ManualClock, systemClock, type TimerHandle } from './clock.js';
export {
  type CheckEvent,
  type CheckerState,
  HealthMonitor,
  type HealthMonitorEvents,
  type HealthMonitorOptions,
  type ManagedService,
  type QuorumEvent,
  type ServerEvent,
  type ServerState,
  type StopOptions,
  type VirtualServerState,
  type WeightEvent,
} from './monitor.js';
export type {
  CheckerSpec,
  CheckFunctionResult,
  CheckTarget,
  CheckTiming,
  ConnectOptions,
  HttpCheckSpec,
  HttpProtocol,
  HttpUrlSpec,
  JsCheckSpec,
  MiscCheckSpec,
  NotifyCommand,
  RealServerHealth,
  SmtpCheckSpec,
  SorryServerSpec,
  TcpCheckSpec,
  VirtualServerHealth,
} from './types.js';
export { fromKeepalived, type KeepalivedHealth } from './keepalived.js';
