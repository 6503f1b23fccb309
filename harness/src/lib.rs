//! certbench: a hardware-in-the-loop harness that certifies consumer IoT devices against
//! minimum security requirements (ETSI EN 303 645, TS 103 701).
//!
//! Modules, by capability: [`config`] (user files), [`console`] and [`power`] (device
//! interfaces), [`engine`] (scenario steps and verdicts), [`report`] (run events and
//! reporters), [`run`] (one run of scenarios against one device).

pub mod bench;
pub mod config;
pub mod console;
pub mod debug;
pub mod docs;
pub mod engine;
pub mod exit;
pub mod gateway;
pub mod lab;
pub mod model;
pub mod power;
pub mod process;
pub mod redact;
pub mod remote;
pub mod report;
pub mod run;
pub mod tlscert;
pub mod tlswire;
pub mod update;
pub mod util;
pub mod vuln;
