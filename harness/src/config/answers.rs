//! `network.http_answers`: the HTTP answers the maker declares for paths the device asks its
//! cloud (IXIT), validated into [`DeclaredAnswer`]s.

use std::path::Path;

use schemars::JsonSchema;
use serde::Deserialize;

use super::yaml::{InputError, Loc};
use crate::model::DeclaredAnswer;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAnswer {
    /// The request path answered (exact, the query is not compared), e.g. `/v1/manifest`.
    pub path: Loc<String>,
    /// Only requests naming this host (HTTP `Host`, or the TLS server name); default any.
    #[serde(default)]
    pub host: Option<Loc<String>>,
    /// The status (200..=599; default 200).
    #[serde(default)]
    pub status: Option<Loc<u16>>,
    /// Default `application/json`.
    #[serde(default)]
    pub content_type: Option<Loc<String>>,
    /// The body, as text.
    #[serde(default)]
    pub body: Option<Loc<String>>,
    /// Or the body from a file (relative to the profile's folder; at most 1 MiB).
    #[serde(default)]
    pub body_file: Option<Loc<String>>,
}

/// Characters a header value or a host name may carry: printable ASCII, no CR/LF.
fn header_safe(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && s.bytes().all(|c| (0x20..0x7f).contains(&c))
}

/// Validates the answers; every mistake is an error naming its field and place.
pub fn resolve(file: &Path, raw: &[RawAnswer], errs: &mut Vec<InputError>) -> Vec<DeclaredAnswer> {
    let base = crate::util::folder_of(file);
    let mut out: Vec<DeclaredAnswer> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let field = |f: &str| format!("network.http_answers[{i}].{f}");
        let before = errs.len();
        let path = &r.path.value;
        if !path.starts_with('/') || !header_safe(path) || path.contains([' ', '?', '#']) {
            errs.push(
                InputError::new(
                    file,
                    Some(r.path.pos),
                    field("path"),
                    format!("{path:?} is not a request path"),
                )
                .with_hint("a path as the device requests it, from the root, without query: /v1/manifest"),
            );
        }
        if let Some(h) = &r.host
            && (!header_safe(&h.value) || h.value.contains(['/', ' ']))
        {
            errs.push(InputError::new(
                file,
                Some(h.pos),
                field("host"),
                format!("{:?} is not a host name", h.value),
            ));
        }
        let status = r.status.as_ref().map_or(200, |s| s.value);
        if let Some(s) = &r.status
            && !(200..=599).contains(&s.value)
        {
            errs.push(
                InputError::new(
                    file,
                    Some(s.pos),
                    field("status"),
                    format!("{} is not a final HTTP status", s.value),
                )
                .with_hint("200..=599"),
            );
        }
        if let Some(c) = &r.content_type
            && !header_safe(&c.value)
        {
            errs.push(InputError::new(
                file,
                Some(c.pos),
                field("content_type"),
                "not a header value (printable ASCII, no line breaks)",
            ));
        }
        let body = body(file, base, r, &field, errs);
        let a = DeclaredAnswer {
            host: r.host.as_ref().map(|h| h.value.clone()),
            path: path.clone(),
            status,
            content_type: r
                .content_type
                .as_ref()
                .map_or_else(|| "application/json".into(), |c| c.value.clone()),
            body,
        };
        if out.iter().any(|o| o.path == a.path && o.host == a.host) {
            errs.push(InputError::new(
                file,
                Some(r.path.pos),
                field("path"),
                format!("{path:?} is answered twice for the same host"),
            ));
        }
        if errs.len() == before {
            out.push(a);
        }
    }
    out
}

/// The body: `body` as text, or `body_file`'s bytes (through the gate every named file
/// passes); not both.
fn body(
    file: &Path,
    base: &Path,
    r: &RawAnswer,
    field: &dyn Fn(&str) -> String,
    errs: &mut Vec<InputError>,
) -> Vec<u8> {
    match (&r.body, &r.body_file) {
        (Some(b), Some(_)) => {
            errs.push(InputError::new(
                file,
                Some(b.pos),
                field("body"),
                "give `body` or `body_file`, not both",
            ));
            Vec::new()
        }
        (Some(b), None) => b.value.clone().into_bytes(),
        (None, Some(f)) => {
            let p = base.join(&f.value);
            match crate::util::read_user_file(&p, &[base], crate::util::limits::TEXT) {
                Ok(b) => b,
                Err(why) => {
                    errs.push(
                        InputError::new(file, Some(f.pos), field("body_file"), why)
                            .with_hint("paths are relative to the profile's folder"),
                    );
                    Vec::new()
                }
            }
        }
        (None, None) => Vec::new(),
    }
}
