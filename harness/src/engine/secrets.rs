//! Secrets never reach an output: every known secret value is replaced by its name in
//! transcripts, excerpts, reasons and logs.

use std::sync::{Arc, RwLock};

use rand::Rng;

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<Vec<(String, String)>>>,
}

/// Shorter values are not redacted: they would blank out ordinary words.
const MIN_SECRET_LEN: usize = 3;

impl Redactor {
    pub fn add(&self, name: &str, value: &str) {
        if value.len() < MIN_SECRET_LEN {
            return;
        }
        let mut g = self.secrets.write().unwrap_or_else(|p| p.into_inner());
        if !g.iter().any(|(_, v)| v == value) {
            g.push((name.to_string(), value.to_string()));
            g.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        }
    }

    pub fn redact(&self, s: &str) -> String {
        let g = self.secrets.read().unwrap_or_else(|p| p.into_inner());
        let mut out = s.to_string();
        for (name, v) in g.iter() {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), &format!("<secret:{name}>"));
            }
        }
        out
    }

    pub fn redact_bytes(&self, b: &[u8]) -> Vec<u8> {
        let g = self.secrets.read().unwrap_or_else(|p| p.into_inner());
        let mut out = b.to_vec();
        for (name, v) in g.iter() {
            let needle = v.as_bytes();
            let repl = format!("<secret:{name}>").into_bytes();
            let mut res = Vec::with_capacity(out.len());
            let mut i = 0;
            while i < out.len() {
                if out[i..].starts_with(needle) {
                    res.extend_from_slice(&repl);
                    i += needle.len();
                } else {
                    res.push(out[i]);
                    i += 1;
                }
            }
            out = res;
        }
        out
    }
}

/// A random password with upper and lower case letters, digits and symbols, using only
/// characters that terminals and shells pass through unchanged.
pub fn generate_password(len: usize) -> String {
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const DIGIT: &[u8] = b"23456789";
    const SYMBOL: &[u8] = b"-_.+=@%";
    let mut rng = rand::rng();
    let classes = [UPPER, LOWER, DIGIT, SYMBOL];
    let mut out: Vec<u8> = classes
        .iter()
        .map(|c| c[rng.random_range(0..c.len())])
        .collect();
    while out.len() < len {
        let c = classes[rng.random_range(0..classes.len())];
        out.push(c[rng.random_range(0..c.len())]);
    }
    // shuffle so the class order is not predictable
    for i in (1..out.len()).rev() {
        let j = rng.random_range(0..=i);
        out.swap(i, j);
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_longest_first_in_text_and_bytes() {
        let r = Redactor::default();
        r.add("factory.password", "secret");
        r.add("new", "secret-longer");
        assert_eq!(
            r.redact("a secret-longer b secret"),
            "a <secret:new> b <secret:factory.password>"
        );
        assert_eq!(
            r.redact_bytes(b"xsecretx"),
            b"x<secret:factory.password>x".to_vec()
        );
    }

    #[test]
    fn generated_passwords_have_every_class() {
        for _ in 0..50 {
            let p = generate_password(16);
            assert_eq!(p.len(), 16);
            assert!(p.chars().any(|c| c.is_ascii_uppercase()));
            assert!(p.chars().any(|c| c.is_ascii_lowercase()));
            assert!(p.chars().any(|c| c.is_ascii_digit()));
            assert!(p.chars().any(|c| "-_.+=@%".contains(c)));
        }
    }
}
