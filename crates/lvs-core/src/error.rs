//! Errors of the virtual-server table, with the errno-style codes and the texts ipvsadm prints.

use std::fmt;

/// What went wrong, as an errno name an operator (and a program) can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// A service or real server already exists.
    Exists,
    /// The service named does not exist.
    NoService,
    /// The real server, scheduler or persistence engine named does not exist.
    NotFound,
    /// An argument is malformed or not allowed.
    Invalid,
    /// A number is outside the range the kernel accepts.
    Range,
    /// The address family is not supported for this operation.
    AfNotSupported,
    /// A table is full.
    NoMemory,
    /// A setting the kernel has that lvs does not act on.
    NotSupported,
}

impl Code {
    /// The errno name, as it appears in `LvsError.code` on the JavaScript side.
    pub const fn errno(self) -> &'static str {
        match self {
            Code::Exists => "EEXIST",
            Code::NoService => "ESRCH",
            Code::NotFound => "ENOENT",
            Code::Invalid => "EINVAL",
            Code::Range => "ERANGE",
            Code::AfNotSupported => "EAFNOSUPPORT",
            Code::NoMemory => "ENOMEM",
            Code::NotSupported => "ENOTSUP",
        }
    }
}

/// An error with a stable [`Code`] and a message in ipvsadm's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: Code,
    message: String,
}

impl Error {
    /// An error with the given code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error { code, message: message.into() }
    }
    /// `EINVAL` with a message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(Code::Invalid, message)
    }
    /// `ERANGE` with a message.
    pub fn range(message: impl Into<String>) -> Self {
        Error::new(Code::Range, message)
    }
    /// "Service already exists" (`ipvs_add_service`, EEXIST).
    pub fn service_exists() -> Self {
        Error::new(Code::Exists, "Service already exists")
    }
    /// "No such service" (`ipvs_update_service`/`ipvs_del_service`/`ipvs_zero_service`, ESRCH).
    pub fn no_service() -> Self {
        Error::new(Code::NoService, "No such service")
    }
    /// "Service not defined" (real-server commands on a missing service, ESRCH).
    pub fn service_not_defined() -> Self {
        Error::new(Code::NoService, "Service not defined")
    }
    /// "Destination already exists" (`ipvs_add_dest`, EEXIST).
    pub fn dest_exists() -> Self {
        Error::new(Code::Exists, "Destination already exists")
    }
    /// "No such destination" (`ipvs_update_dest`/`ipvs_del_dest`, ENOENT).
    pub fn no_dest() -> Self {
        Error::new(Code::NotFound, "No such destination")
    }
    /// "Scheduler or persistence engine not found" (ENOENT).
    pub fn no_scheduler() -> Self {
        Error::new(Code::NotFound, "Scheduler or persistence engine not found")
    }
    /// The code.
    pub fn code(&self) -> Code {
        self.code
    }
    /// The message, without the code.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_texts_match_ipvsadm() {
        assert_eq!(Error::service_exists().code().errno(), "EEXIST");
        assert_eq!(Error::no_service().to_string(), "No such service");
        assert_eq!(Error::service_not_defined().code().errno(), "ESRCH");
        assert_eq!(Error::no_dest().code().errno(), "ENOENT");
        assert_eq!(Error::no_scheduler().to_string(), "Scheduler or persistence engine not found");
    }
}
