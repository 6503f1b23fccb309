//! The leaf layer: plain values every other layer shares — positions in user files, durations,
//! templates, the item's identity, what a scenario evidences, the requirement catalogue, and the
//! names the profile, scenarios and benches agree on. It imports nothing else from the crate
//! (`tests/architecture.rs` checks it).

pub mod answers;
pub mod attribution;
pub mod catalogue;
pub mod config_op;
pub mod console_port;
pub mod duration;
pub mod evidence;
pub mod identity;
pub mod labgrid;
pub mod names;
pub mod personal;
pub mod position;
pub mod privacy;
pub mod secure_boot;
pub mod signature;
pub mod software;
pub mod template;
pub mod transport;
pub mod unit;

pub use answers::DeclaredAnswer;
pub use attribution::{Attribution, Origin};
pub use catalogue::{Catalogue, CheckId};
pub use evidence::Evidences;
pub use identity::DeviceIdentity;
pub use names::{CertVariant, ListenerName, TrustSource};
pub use position::{Loc, Pos};
pub use transport::Transport;

/// Names a maker may declare exempt (ICS/IXIT): the plaintext protocols.
pub const PLAINTEXT_NAMES: &[&str] = &[
    "mqtt", "http", "telnet", "ftp", "smtp", "coap", "dns", "mdns", "ntp", "dhcp", "ssdp",
];
