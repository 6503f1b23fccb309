//! AUT-01 (5.1-3, issue 28): how the device stores its passwords, read at its shell in
//! `/etc/shadow` form and judged by each entry's hash scheme. Hashes are never shown: the
//! evidence names the account, the scheme and the salt's length.

use serde::Serialize;

use super::prelude::*;

/// What a stored password field is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Scheme {
    /// A slow, salted scheme (the name).
    Good(&'static str),
    /// A broken or fast one (the name).
    Weak(&'static str),
    /// No password can log in (`*`, `!`, `x`, …).
    Locked,
    /// Empty: the account logs in without a password.
    Empty,
    Unknown,
}

/// The scheme of one password field, by its id (`$y$`, `$6$`, …) or its form.
fn scheme(field: &str, known: &[String]) -> Scheme {
    let f = field.trim();
    if f.is_empty() {
        return Scheme::Empty;
    }
    if known.iter().any(|k| k == f) {
        return Scheme::Weak("the password itself, in clear");
    }
    if f.starts_with('!') || f.starts_with('*') || f == "x" || f == "LK" || f == "NP" {
        return Scheme::Locked;
    }
    const IDS: &[(&str, Scheme)] = &[
        ("$y$", Scheme::Good("yescrypt")),
        ("$gy$", Scheme::Good("gost-yescrypt")),
        ("$7$", Scheme::Good("scrypt")),
        ("$2b$", Scheme::Good("bcrypt")),
        ("$2a$", Scheme::Good("bcrypt")),
        ("$2y$", Scheme::Good("bcrypt")),
        ("$argon2id$", Scheme::Good("argon2id")),
        ("$argon2i$", Scheme::Good("argon2i")),
        ("$argon2d$", Scheme::Good("argon2d")),
        ("$6$", Scheme::Good("sha512-crypt")),
        ("$5$", Scheme::Good("sha256-crypt")),
        ("$1$", Scheme::Weak("MD5-crypt")),
        ("$md5", Scheme::Weak("Sun MD5-crypt")),
        ("$sha1$", Scheme::Weak("SHA1-crypt")),
        ("$3$", Scheme::Weak("NT hash")),
        ("$2x$", Scheme::Weak("bcrypt with the 8-bit bug")),
    ];
    if let Some((_, s)) = IDS.iter().find(|(id, _)| f.starts_with(id)) {
        return *s;
    }
    let b64 = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '/';
    if f.len() == 13 && f.chars().all(b64) {
        return Scheme::Weak("DES-crypt");
    }
    if f.starts_with('_') && f.len() == 20 && f[1..].chars().all(b64) {
        return Scheme::Weak("BSDi extended DES");
    }
    if f.chars().all(|c| c.is_ascii_hexdigit()) {
        match f.len() {
            32 => return Scheme::Weak("an unsalted MD5"),
            40 => return Scheme::Weak("an unsalted SHA-1"),
            64 => return Scheme::Weak("an unsalted SHA-256"),
            128 => return Scheme::Weak("an unsalted SHA-512"),
            _ => {}
        }
    }
    Scheme::Unknown
}

/// One account as read (for `password-store.json`; no hash).
#[derive(Debug, Serialize)]
struct Entry {
    account: String,
    scheme: Scheme,
}

/// The (account, password field) of each `user:field:...` line of a password store
/// (others ignored: the echoed command, a banner).
fn fields(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| {
            let mut parts = l.trim().split(':');
            let (user, field) = (parts.next()?, parts.next()?);
            let valid_user = !user.is_empty()
                && user.len() <= 32
                && user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' || c == '$');
            (valid_user && parts.next().is_some()).then(|| (user.to_string(), field.to_string()))
        })
        .collect()
}

fn entries(out: &str, known: &[String]) -> Vec<Entry> {
    fields(out)
        .into_iter()
        .map(|(account, field)| Entry {
            scheme: scheme(&field, known),
            account,
        })
        .collect()
}

impl Run<'_> {
    /// `password_store`: the shell's view of the password store, judged per account.
    pub(in crate::engine) async fn password_store(&mut self) -> StepResult {
        self.ensure_shell().await?;
        let cmd = self.spec()?.password_store_command.clone();
        let out = self
            .shell_output(&cmd, Duration::from_secs(15), "the password store was not read")
            .await?;
        let known: Vec<String> = self.rig.redactor.secrets().into_iter().map(|(_, v)| v).collect();
        let all = entries(&out, &known);
        // the hashes are secrets in every transcript and excerpt (they can be cracked offline)
        for (account, field) in fields(&out) {
            if field.len() >= 8 {
                self.rig.redactor.add(&format!("password_hash.{account}"), &field);
            }
        }
        self.keep_evidence(
            "password-store.json",
            serde_json::to_string_pretty(&all).unwrap_or_default(),
        );
        let user = self.rig.current.as_ref().map(|l| l.user.clone()).unwrap_or_default();
        let said = shown(&self.rig.redactor, out.trim());
        let Some(mine) = all.iter().find(|e| e.account == user) else {
            return Err(Stop::Error(format!(
                "`{cmd}` showed no entry for {user:?}, the account the run logs in with ({} entries read): this is not the device's password store, or it cannot be read here — declare `console.password_store_command`. It said: {}",
                all.len(),
                crate::gateway::flows::excerpt(said.as_bytes(), 200)
            )));
        };
        if matches!(mine.scheme, Scheme::Locked) {
            return Err(Stop::Error(format!(
                "the entry for {user:?} holds no password hash, yet the run logs in with it: not where the device keeps its passwords"
            )));
        }
        let weak: Vec<String> = all
            .iter()
            .filter_map(|e| match e.scheme {
                Scheme::Weak(w) => Some(format!("{} ({w})", e.account)),
                Scheme::Empty => Some(format!("{} (no password at all)", e.account)),
                _ => None,
            })
            .collect();
        if !weak.is_empty() {
            return Err(Stop::Fail {
                check: Some("AUT-01".into()),
                reason: format!(
                    "AUT-01: passwords stored without best-practice cryptography — {} (read with `{cmd}`, {} entries)",
                    weak.join(", "),
                    all.len()
                ),
            });
        }
        let unknown: Vec<&str> = all
            .iter()
            .filter(|e| e.scheme == Scheme::Unknown)
            .map(|e| e.account.as_str())
            .collect();
        if !unknown.is_empty() {
            return Err(Stop::Error(format!(
                "the password field of {} is in no scheme certbench knows: not decided (password-store.json)",
                unknown.join(", ")
            )));
        }
        let good: Vec<String> = all
            .iter()
            .filter_map(|e| match e.scheme {
                Scheme::Good(g) => Some(format!("{} ({g})", e.account)),
                _ => None,
            })
            .collect();
        Ok(format!(
            "every password is stored with a slow salted hash: {}; {} locked accounts (read with `{cmd}`)",
            good.join(", "),
            all.iter().filter(|e| e.scheme == Scheme::Locked).count()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scheme_is_named_by_its_form() {
        let k = vec!["Owner-Secret-77".to_string()];
        for (f, want) in [
            ("$y$j9T$abc$def", Scheme::Good("yescrypt")),
            ("$6$salt$hash", Scheme::Good("sha512-crypt")),
            ("$2b$12$abcdefghijklmnopqrstuv", Scheme::Good("bcrypt")),
            ("$argon2id$v=19$m=65536", Scheme::Good("argon2id")),
            ("$1$saltsalt$hash", Scheme::Weak("MD5-crypt")),
            ("abJnggxhB/yWI", Scheme::Weak("DES-crypt")),
            ("5f4dcc3b5aa765d61d8327deb882cf99", Scheme::Weak("an unsalted MD5")),
            ("Owner-Secret-77", Scheme::Weak("the password itself, in clear")),
            ("!", Scheme::Locked),
            ("*", Scheme::Locked),
            ("!$y$j9T$x$y", Scheme::Locked),
            ("", Scheme::Empty),
            ("{SSHA}abc", Scheme::Unknown),
        ] {
            assert_eq!(scheme(f, &k), want, "{f}");
        }
    }

    #[test]
    fn only_shadow_lines_are_read() {
        let out =
            "cat /etc/shadow\r\nroot:*:19000:0:99999:7:::\nadmin:$1$ab$cd:19700:0:99999:7:::\nPermission denied: x\n";
        let e = entries(out, &[]);
        let names: Vec<&str> = e.iter().map(|e| e.account.as_str()).collect();
        assert_eq!(names, ["root", "admin"]);
        assert_eq!(e[1].scheme, Scheme::Weak("MD5-crypt"));
    }
}
