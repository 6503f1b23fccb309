//! Values several profile sections share: how the maker declares a thing, a command with its
//! timeout, which CA a device trusts, the prompts of a login.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

use super::yaml::Loc;
use crate::model::duration::Dur;
use crate::model::template::Template;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum RawTrust {
    /// The device is provisioned with the bench CA ({{bench.ca_cert}}).
    BenchCa,
    /// The maker's test CA, certificate and key (PEM).
    MakerCa { cert: PathBuf, key: PathBuf },
    /// Nothing the bench can issue is trusted: checks needing a valid certificate are SKIPPED.
    None,
}

/// A maker's declaration: a plain yes/no, or no with the maker's reason.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Declaration {
    Flag(bool),
    NotApplicable { applies: bool, reason: String },
}

impl Declaration {
    pub fn applies(&self) -> bool {
        match self {
            Declaration::Flag(b) => *b,
            Declaration::NotApplicable { applies, .. } => *applies,
        }
    }
    pub fn reason(&self) -> Option<&str> {
        match self {
            Declaration::Flag(_) => None,
            Declaration::NotApplicable { reason, .. } => Some(reason),
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCommand {
    pub command: Loc<String>,
    #[serde(default)]
    pub timeout: Option<Dur>,
}

#[derive(Debug, Clone)]
pub struct Prompts {
    pub login: regex::bytes::Regex,
    pub password: regex::bytes::Regex,
    pub shell: regex::bytes::Regex,
    pub password_change: Option<regex::bytes::Regex>,
    pub current_password: Option<regex::bytes::Regex>,
    pub new_password: Option<regex::bytes::Regex>,
    pub confirm_password: Option<regex::bytes::Regex>,
    pub login_rejected: regex::bytes::Regex,
    pub password_rejected: Option<regex::bytes::Regex>,
}

#[derive(Debug, Clone)]
pub struct CommandSpec {
    pub command: Template,
    pub timeout: std::time::Duration,
}
