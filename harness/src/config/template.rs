//! `{{name}}` references in strings a user writes: commands, lines to send, patterns.
//!
//! Parsed once at load time so that an unknown name is an input error with a location,
//! not a surprise in the middle of a run. `{{{{` and `}}}}` are not special; a literal `{{`
//! is written `{{"{{"}}`.

use std::collections::BTreeMap;

/// A parsed string with variable references.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
    source: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Var(String),
}

/// How a value is inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    /// As is (lines sent to the console).
    Raw,
    /// Escaped for a regular expression, so captured text matches literally.
    Regex,
    /// Single-quoted for `sh -c`.
    Shell,
}

impl Template {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Lit(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| format!("unclosed `{{{{` in {s:?}"))?;
            let inner = after[..end].trim();
            if let Some(lit) = inner.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
                parts.push(Part::Lit(lit.to_string()));
            } else {
                if inner.is_empty()
                    || !inner
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
                {
                    return Err(format!("invalid variable name {inner:?} in {s:?}"));
                }
                parts.push(Part::Var(inner.to_string()));
            }
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        Ok(Self {
            parts,
            source: s.to_string(),
        })
    }

    pub fn literal(s: &str) -> Self {
        Self {
            parts: vec![Part::Lit(s.to_string())],
            source: s.to_string(),
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Lit(_) => None,
        })
    }

    /// Expands with the given values; a missing name is reported (validation should have
    /// made that impossible).
    pub fn render(&self, vars: &BTreeMap<String, String>, quote: Quote) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => out.push_str(l),
                Part::Var(v) => {
                    let val = vars.get(v).ok_or_else(|| format!("variable {v:?} has no value yet"))?;
                    match quote {
                        Quote::Raw => out.push_str(val),
                        Quote::Regex => out.push_str(&regex::escape(val)),
                        Quote::Shell => out.push_str(&shell_quote(val)),
                    }
                }
            }
        }
        Ok(out)
    }
}

pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r#"'\''"#))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders() {
        let t = Template::parse("hello {{ user }}, v{{ver}}!").expect("valid");
        assert_eq!(t.vars().collect::<Vec<_>>(), ["user", "ver"]);
        let vars = BTreeMap::from([("user".into(), "a b".into()), ("ver".into(), "1.2".into())]);
        assert_eq!(t.render(&vars, Quote::Raw).as_deref(), Ok("hello a b, v1.2!"));
        assert_eq!(t.render(&vars, Quote::Regex).as_deref(), Ok("hello a b, v1\\.2!"));
        assert_eq!(t.render(&vars, Quote::Shell).as_deref(), Ok("hello 'a b', v'1.2'!"));
    }

    #[test]
    fn rejects_bad_names_and_unclosed() {
        assert!(Template::parse("{{ a b }}").is_err());
        assert!(Template::parse("x {{ y").is_err());
        assert_eq!(
            Template::parse(r#"a{{"{{"}}b"#)
                .expect("ok")
                .render(&BTreeMap::new(), Quote::Raw)
                .as_deref(),
            Ok("a{{b")
        );
    }

    #[test]
    fn shell_quote_survives_quotes() {
        assert_eq!(shell_quote("it's"), r#"'it'\''s'"#);
    }
}
