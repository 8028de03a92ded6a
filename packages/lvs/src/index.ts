/**
 * lvs: Linux Virtual Server in user space. A layer-4 load balancer with the semantics of Linux
 * IPVS, configured through a typed API that mirrors ipvsadm.
 *
 * @example
 * ```ts
 * import { Director } from 'lvs';
 *
 * const director = await Director.open();
 * director.addService({ protocol: 'tcp', address: '10.10.36.11:80', scheduler: 'rr' });
 * ```
 * @module
 */
export { fwmark, sctp, type ServiceBuilder, type ServiceDefinition, tcp, udp } from './builder.js';
export { Director, type DirectorOptions, type ExecResult } from './director.js';
export { type ControlOptions, type ControlServer, DEFAULT_CONTROL_SOCKET } from './control.js';
export { splitCommand } from './command.js';
export { applySysctlConf, parseSysctlConf, type SysctlLine } from './sysctl.js';
export { LvsError, type LvsErrorCode } from './errors.js';
export * from './health/index.js';
export {
  type StartVrrpOptions,
  type VrrpAuthentication,
  type VrrpCommand,
  type VrrpEvents,
  type VrrpInstanceOptions,
  type VrrpInstanceStatus,
  type VrrpLog,
  type VrrpScriptOptions,
  VrrpSpeaker,
  type VrrpState,
  type VrrpStateChange,
  type VrrpSyncGroupOptions,
  type VrrpTrackInterface,
  type VrrpTrackInterfaceEntry,
  type VrrpTrackScript,
  type VrrpTrackScriptEntry,
} from './vrrp.js';
export { type RealServerOptions, type RealServerSetup, setupRealServer } from './realserver.js';
export type {
  AddressText,
  ConnectionInfo,
  Family,
  FlowQuery,
  ForwardingAlias,
  ForwardingMethod,
  FwmarkServiceInfo,
  FwmarkServiceRef,
  IpvsSysctls,
  IpvsSysctlSettings,
  MarkRule,
  OutFrame,
  Protocol,
  Rates,
  RouteResult,
  RouteSpec,
  SchedulerFlag,
  SchedulerName,
  ServerInfo,
  ServerOptions,
  ServiceInfo,
  ServiceInfoBase,
  ServiceOptions,
  ServiceRef,
  ServiceSettings,
  Stats,
  SyncDaemonInfo,
  SyncDaemonOptions,
  SyncState,
  Timeouts,
  TunnelOptions,
  VirtualServiceInfo,
  VirtualInterface,
  VirtualServiceRef,
} from './types.js';
export * from './keepalived/index.js';
