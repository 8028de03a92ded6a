//! ipvsadm compatibility: its command line, its output formats and its `-R` input, over the table.

mod exec;
mod format;
mod parse;

pub use exec::{execute, restore, run, usage_text, version_line, Context, Outcome, RestoreError};
pub use format::{
    list_all, list_conn, list_daemons, list_service, list_timeout, save, Names, NoNames, IPVS_VERSION,
};
pub use parse::{parse, Command, DaemonConfig, Format, ListOptions, SyncRole, Usage};

#[cfg(test)]
mod tests;
