//! `password: { env | file | value }`: where a secret comes from, and reading it. Its own
//! file: the profile (a device's login), the lab's units (label passwords) and the
//! credentials all name one, and none of them may depend on another for it.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;

/// Where a secret comes from. Prefer `env` or `file` for real boards so the secret is
/// never committed; `value` is for simulators.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
    Value(String),
}

/// The secret's text (`skip`: not read, empty; for `validate`). A file is read relative to
/// `base` and must stay under it.
pub(super) fn secret(base: &Path, src: &SecretSource, skip: bool) -> Result<String, String> {
    if skip {
        return Ok(String::new());
    }
    match src {
        SecretSource::Value(v) => Ok(v.clone()),
        SecretSource::Env(name) => std::env::var(name)
            .map_err(|_| format!("environment variable {name} is not set (it holds the factory password)")),
        SecretSource::File(p) => {
            let path = if p.is_absolute() { p.clone() } else { base.join(p) };
            crate::util::read_user_file(&path, &[base], crate::util::limits::TEXT)
                .and_then(|b| String::from_utf8(b).map_err(|_| "not UTF-8 text".to_string()))
                .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|e| {
                    format!(
                        "cannot read secret file {}: {e} (keep secrets beside the file that names them, or use env:)",
                        path.display()
                    )
                })
        }
    }
}
