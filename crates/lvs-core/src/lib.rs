//! # lvs-core
//!
//! The pure heart of lvs, a user-space Linux Virtual Server: the virtual-server model, the IPVS
//! schedulers, statistics and (later) the connection table and packet processing. No I/O and no
//! `unsafe`: time comes in as an argument, so everything is testable without root.
#![forbid(unsafe_code)]

pub mod addr;
pub mod conn;
pub mod dest;
pub mod engine;
pub mod error;
pub mod ipvs;
pub mod ipvsadm;
pub mod model;
pub mod order;
pub mod pe;
pub mod rng;
pub mod sched;
pub mod stats;
pub mod sync;
pub mod sysctl;
pub mod time;
pub mod vrrp;
pub mod wire;

pub use error::{Code, Error, Result};
pub use ipvs::Ipvs;
