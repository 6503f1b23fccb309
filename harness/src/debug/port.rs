//! What a debug port is, whatever drives it: the trait every driver implements, what it can
//! do, and how an operation fails.

/// Why a debug operation did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum DebugError {
    /// The part refused (locked, access denied): evidence for the check, not a harness error.
    Refused(String),
    /// The connection broke part way.
    Lost(String),
    /// No probe or server could be reached, or the driver is misconfigured: ERROR.
    Unavailable(String),
    /// The driver cannot do this.
    Unsupported(&'static str),
}

impl std::fmt::Display for DebugError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DebugError::Refused(m) => write!(f, "refused by the part: {m}"),
            DebugError::Lost(m) => write!(f, "connection lost: {m}"),
            DebugError::Unavailable(m) => write!(f, "{m}"),
            DebugError::Unsupported(what) => write!(f, "the debug driver cannot {what}"),
        }
    }
}

/// What a driver can do, discovered rather than assumed.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Abilities {
    pub halt: bool,
    pub resume: bool,
    pub reset: bool,
    pub read: bool,
    pub write: bool,
    pub lock_state: bool,
}

/// The lock state a driver can report, when it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LockState {
    Locked,
    Unlocked,
    Unknown,
}

/// A debug port. Synchronous: drivers talk to USB probes and sockets; the engine calls
/// them off the async executor.
pub trait DebugPort: Send {
    /// Which probe or server, for the evidence.
    fn describe(&self) -> String;
    fn abilities(&self) -> Abilities;
    /// Connects and attaches to the part; returns what was attached.
    fn attach(&mut self) -> Result<String, DebugError>;
    fn halt(&mut self) -> Result<(), DebugError>;
    fn resume(&mut self) -> Result<(), DebugError>;
    fn reset(&mut self) -> Result<(), DebugError>;
    /// Reads `buf.len()` bytes at `addr`.
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), DebugError>;
    fn lock_state(&mut self) -> LockState {
        LockState::Unknown
    }
    /// Writes an image (ELF, hex or bin) to the part's flash.
    fn flash(&mut self, _image: &std::path::Path) -> Result<(), DebugError> {
        Err(DebugError::Unsupported("flash an image"))
    }
    /// Writes `data` at `addr` (flash included: the bytes a boot stage will read), keeping
    /// the bytes of the flash around it. Callers read it back to know it is there.
    fn write(&mut self, _addr: u64, _data: &[u8]) -> Result<(), DebugError> {
        Err(DebugError::Unsupported("write memory"))
    }
}
