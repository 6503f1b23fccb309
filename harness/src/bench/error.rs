//! Why a bench could not start or do what was asked.

use std::net::SocketAddr;

use super::pki;

/// Why a bench could not start or do what was asked (a harness error).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot bind the {what} to {addr}: {source}")]
    Bind {
        what: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Dir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    /// The bench cannot do what was asked on this device (e.g. present a certificate from a
    /// CA the device does not trust).
    #[error("{0}")]
    Unavailable(String),
    /// A `{{name}}` could not be filled in.
    #[error("{0}")]
    Template(String),
}
