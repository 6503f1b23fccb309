//! The lab's default-credential list (`default_credentials:`): `user:password` lines.

/// Parses a lab's file: `user:password` per line; `#` comments and blank lines skipped.
/// Errors name the line.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let l = line.trim_end_matches('\r');
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        match l.split_once(':') {
            Some((u, p)) if !u.is_empty() => out.push((u.to_string(), p.to_string())),
            _ => return Err((n + 1, "expected `user:password`".into())),
        }
        if out.len() > 10_000 {
            return Err((n + 1, "more than 10000 entries".into()));
        }
    }
    Ok(out)
}
