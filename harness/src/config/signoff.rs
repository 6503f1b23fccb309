//! Reviewers' sign-offs on documentary checks (the lab's `signoffs:` file).

use serde::Deserialize;

/// A reviewer's decision on a documentary check.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SignOff {
    /// The check decided, e.g. DOC-03.
    pub check: String,
    pub reviewer: String,
    /// When (YYYY-MM-DD).
    pub date: String,
    pub decision: Decision,
    #[serde(default)]
    pub comment: String,
    /// The SHA-256 of the document reviewed; a different document voids the sign-off.
    /// Required for a PASS (otherwise any later edit of the document would pass).
    #[serde(default)]
    pub document_sha256: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Pass,
    Fail,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignOffFile {
    pub signoffs: Vec<SignOff>,
}
