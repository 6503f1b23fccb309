//! Personal data and security parameters the device holds (the IXIT's `personal_data:`):
//! certbench plants a fresh value of each through the device's own interfaces and searches
//! the capture for it (COM-04).

use rand::Rng;

/// What a value stands for; decides which check a value seen in clear fails.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Class {
    /// A password the run set or used (PWD-10; 5.5-6, 5.5-7). Not declarable: the run's own.
    #[serde(skip_deserializing)]
    Password,
    /// A critical security parameter: a Wi-Fi PSK, an API token, a key (5.5-6, 5.5-7).
    Security,
    /// Personal data: an e-mail address, a name, a location (5.8-1).
    Personal,
    /// Sensitive personal data: health, a precise home location, a child's name (5.8-2).
    Sensitive,
    /// The bench's own value, sent in clear to prove the search sees the wire. Not declarable.
    #[serde(skip_deserializing)]
    Control,
}

/// The form a generated value takes, so the device accepts it as what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// `x…@….example` (an address in a reserved domain).
    Email,
    /// 20 letters and digits (a WPA2 passphrase is 8–63 printable characters).
    Psk,
    /// 32 letters and digits.
    Token,
    /// `cb-` and 16 letters and digits.
    #[default]
    Text,
}

fn alnum(n: usize, lower: bool) -> String {
    const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let set = if lower { &A[..36] } else { A };
    let mut r = rand::rng();
    (0..n).map(|_| set[r.random_range(0..set.len())] as char).collect()
}

impl Shape {
    /// A fresh, unguessable value of this shape (letters and digits only, so it needs no
    /// quoting on a console or in a URL, and any encoding of it is unambiguous).
    pub fn generate(self) -> String {
        match self {
            Shape::Email => format!("x{}@{}.example", alnum(12, true), alnum(8, true)),
            Shape::Psk => alnum(20, false),
            Shape::Token => alnum(32, false),
            Shape::Text => format!("cb-{}", alnum(16, false)),
        }
    }
}

/// One declared item and how it is set.
#[derive(Debug, Clone)]
pub struct PersonalData {
    pub name: String,
    pub class: Class,
    pub shape: Shape,
    /// The console command that sets it, with `{{value}}` where the value goes; or
    pub console: Option<super::template::Template>,
    /// the request on a declared service that does (as the owner, logged in).
    pub request: Option<super::config_op::Request>,
    /// What the device answers when it took it (a regex; default: only the shell prompt
    /// back; a request: HTTP 2xx or PUBACK).
    pub accepted: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_values_have_their_shape_and_differ() {
        let e = Shape::Email.generate();
        let (local, domain) = e.split_once('@').expect("an e-mail address");
        assert!(local.len() == 13 && domain.ends_with(".example"), "{e}");
        let p = Shape::Psk.generate();
        assert!(
            (8..=63).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{p}"
        );
        assert_eq!(Shape::Token.generate().len(), 32);
        assert!(Shape::Text.generate().starts_with("cb-"));
        assert_ne!(Shape::Psk.generate(), Shape::Psk.generate());
    }
}
