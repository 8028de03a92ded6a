//! Node-API binding of lvs. Conversion and error mapping only: every behaviour lives in
//! `lvs-core`; the TypeScript SDK in `packages/lvs` wraps what this exports.
#![deny(clippy::unwrap_used)]

mod convert;
mod director;
mod engine_config;
mod error;
mod names;
mod sync;
mod vrrp;

pub use convert::*;
pub use director::*;
pub use engine_config::*;
pub use sync::{DaemonInfo, DaemonSpec};
pub use vrrp::*;
