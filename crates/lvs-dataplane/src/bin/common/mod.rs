//! Shared parts of the tunnel tools: argument parsing, a stop flag set by
//! SIGINT/SIGTERM, and run limits.

#![allow(dead_code)] // each tool uses a subset

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    // Async-signal-safe: one atomic store.
    STOP.store(true, Ordering::Release);
}

/// Installs SIGINT/SIGTERM handlers (without SA_RESTART, so a blocking
/// `poll` returns early) that set the stop flag.
pub fn install_stop_handlers() -> std::io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: sigaction is plain old data; all-zero is a valid value
        // (empty mask, no flags) before the handler is filled in.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
        // SAFETY: `sa` is fully initialised and `on_signal` only performs an
        // atomic store, which is async-signal-safe.
        let rc = unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// True once SIGINT or SIGTERM arrived.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Acquire)
}

/// `--count` and `--max-seconds`: when a run ends on its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub count: Option<u64>,
    pub max: Option<Duration>,
}

impl Limits {
    /// Why the loop should stop now, if it should.
    pub fn reason(&self, done: u64, started: Instant) -> Option<&'static str> {
        if stop_requested() {
            Some("signal")
        } else if self.count.is_some_and(|c| done >= c) {
            Some("count reached")
        } else if self.max.is_some_and(|m| started.elapsed() >= m) {
            Some("time limit reached")
        } else {
            None
        }
    }

    /// Handles `--count` / `--max-seconds`; returns false for other flags.
    pub fn parse_flag(&mut self, flag: &str, args: &mut Args) -> Result<bool, String> {
        match flag {
            "--count" => self.count = Some(args.value(flag)?),
            "--max-seconds" => {
                let s: f64 = args.value(flag)?;
                if !(s.is_finite() && s > 0.0) {
                    return Err(format!("--max-seconds must be a positive number, not {s}"));
                }
                self.max = Some(Duration::from_secs_f64(s));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Command-line arguments after the program name.
#[derive(Debug)]
pub struct Args(std::vec::IntoIter<String>);

impl Args {
    pub fn from_env() -> Args {
        Args(std::env::args().skip(1).collect::<Vec<_>>().into_iter())
    }

    pub fn next_flag(&mut self) -> Option<String> {
        self.0.next()
    }

    /// The value after `flag`, parsed.
    pub fn value<T: std::str::FromStr>(&mut self, flag: &str) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        let v = self.0.next().ok_or_else(|| format!("{flag} needs a value"))?;
        v.parse().map_err(|e| format!("{flag} {v}: {e}"))
    }
}

/// Best-effort sysctl write; returns a warning text on failure.
pub fn write_sysctl(path: &str, value: &str) -> Option<String> {
    std::fs::write(path, value).err().map(|e| format!("cannot write {value} to {path}: {e}"))
}
