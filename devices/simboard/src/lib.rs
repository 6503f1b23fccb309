//! The simulated board's logic, as a library so it has unit tests: the board on its serial
//! line (`board`), its MQTT client, update agent, remote services and network helpers. The
//! `simboard` program (main.rs) is its power supply and command line. Nothing here is shared
//! with the harness: certbench reaches the board only through its serial line and network.

pub mod board;
pub mod broker;
pub mod label;
pub mod mqtt;
pub mod net;
pub mod pty;
pub mod remote;
pub mod ssh;
pub mod update;

use std::path::PathBuf;

/// Options shared by the board process and its power supply.
#[derive(Debug, Clone)]
pub struct BoardOptions {
    pub link: PathBuf,
    pub state: PathBuf,
    pub flaws: Vec<board::Flaw>,
    pub boot_ms: u64,
    pub noise_kib: usize,
    pub factory_user: String,
    pub factory_password: String,
    pub mqtt: Option<mqtt::MqttOptions>,
    pub update: Option<update::AgentOptions>,
    pub remote: Option<remote::RemoteOptions>,
    /// Where the plaintext-telemetry flaw posts (a second cloud host, plain HTTP).
    pub telemetry_url: Option<String>,
}
