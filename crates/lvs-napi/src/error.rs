//! Error mapping: core errors become JS errors whose `code` is the errno name; panics become
//! `EPANIC` errors instead of aborting Node.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// The error type every exported function returns: a JS `Error` with `code` set to the string.
pub type Result<T> = napi::Result<T, String>;

/// A JS error with the core error's code and message.
pub fn to_js(e: lvs_core::Error) -> napi::Error<String> {
    napi::Error::new(e.code().errno().to_owned(), e.message())
}

/// A JS `EINVAL` error for input the binding itself cannot convert.
pub fn invalid(message: impl Into<String>) -> napi::Error<String> {
    napi::Error::new("EINVAL".to_owned(), message.into())
}

/// Runs `f`, turning a panic into an `EPANIC` error so it never unwinds into Node.
pub fn guard<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            Err(napi::Error::new("EPANIC".to_owned(), format!("internal error in lvs: {what}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_epanic_errors() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let r: Result<()> = guard(|| panic!("boom"));
        std::panic::set_hook(prev);
        let e = r.unwrap_err();
        assert_eq!(e.status, "EPANIC");
        assert_eq!(e.reason, "internal error in lvs: boom");
    }

    #[test]
    fn core_errors_keep_their_code() {
        let e = to_js(lvs_core::Error::service_exists());
        assert_eq!((e.status.as_str(), e.reason.as_str()), ("EEXIST", "Service already exists"));
    }
}
