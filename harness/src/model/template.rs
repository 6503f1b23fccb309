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
    /// For `sh -c`, quoted for where the reference stands: single-quoted in bare text,
    /// backslash-escaped inside "...", closed and reopened inside '...'. A value never
    /// becomes shell syntax (`$(cmd)`, backquotes, quotes), whatever the quoting around it.
    Shell,
}

/// Variables that are a command prefix (`{{netns.exec}} program ...`): expanded as words.
pub const PREFIX_VARS: &[&str] = &["netns.exec"];

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
        let mut ctx = ShellContext::Bare;
        for p in &self.parts {
            match p {
                Part::Lit(l) => {
                    out.push_str(l);
                    ctx = ctx.after(l);
                }
                Part::Var(v) => {
                    let val = vars.get(v).ok_or_else(|| format!("variable {v:?} has no value yet"))?;
                    match quote {
                        Quote::Raw => out.push_str(val),
                        Quote::Regex => out.push_str(&regex::escape(val)),
                        // a command prefix (several words, or none) stays words when it is
                        // made only of characters the shell gives no meaning
                        Quote::Shell
                            if ctx == ShellContext::Bare
                                && PREFIX_VARS.contains(&v.as_str())
                                && val.chars().all(|c| c.is_ascii_alphanumeric() || " ._/-".contains(c)) =>
                        {
                            out.push_str(val)
                        }
                        Quote::Shell => out.push_str(&ctx.quote(val)),
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Where in `sh` syntax the text so far has left us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShellContext {
    Bare,
    /// Inside '...'.
    Single,
    /// Inside "...".
    Double,
}

impl ShellContext {
    fn after(mut self, text: &str) -> Self {
        let mut escaped = false;
        for c in text.chars() {
            if escaped {
                escaped = false;
                continue;
            }
            self = match (self, c) {
                (ShellContext::Bare | ShellContext::Double, '\\') => {
                    escaped = true;
                    self
                }
                (ShellContext::Bare, '\'') => ShellContext::Single,
                (ShellContext::Bare, '"') => ShellContext::Double,
                (ShellContext::Single, '\'') => ShellContext::Bare,
                (ShellContext::Double, '"') => ShellContext::Bare,
                (s, _) => s,
            };
        }
        self
    }

    fn quote(self, val: &str) -> String {
        match self {
            ShellContext::Bare => shell_quote(val),
            // close the quote, insert the value quoted on its own, reopen
            ShellContext::Single => format!("'{}'", shell_quote(val)),
            ShellContext::Double => {
                let mut o = String::with_capacity(val.len());
                for c in val.chars() {
                    if matches!(c, '\\' | '$' | '`' | '"') {
                        o.push('\\');
                    }
                    o.push(c);
                }
                o
            }
        }
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
    fn a_value_never_becomes_shell_syntax_whatever_the_quotes_around_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("pwned");
        let evil = format!("a'b\"c $(touch {m}) `touch {m}` \\ end", m = marker.display());
        let vars = BTreeMap::from([("x".to_string(), evil.clone())]);
        for src in [
            "printf %s {{x}}",
            "printf %s \"{{x}}\"",
            "printf %s '{{x}}'",
            "printf %s \"pre {{x}} post\"",
            "printf %s 'pre {{x}} post'",
            "printf %s \"it's {{x}}\"",
        ] {
            let cmd = Template::parse(src)
                .expect("parse")
                .render(&vars, Quote::Shell)
                .expect("render");
            let out = std::process::Command::new("sh")
                .args(["-c", &cmd])
                .output()
                .expect("sh");
            let printed = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(printed.contains(&evil), "{src}: {cmd} printed {printed:?}");
            assert!(!marker.exists(), "{src}: {cmd} ran a command from the value");
        }
    }

    #[test]
    fn shell_quote_survives_quotes() {
        assert_eq!(shell_quote("it's"), r#"'it'\''s'"#);
    }
}
