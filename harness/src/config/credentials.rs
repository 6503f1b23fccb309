//! Credentials: the device's factory login (`credentials.factory`, its password from the
//! profile, the environment or a file), the lab's default-credential list
//! (`default_credentials:`, `user:password` lines) and other units' certificates.

use super::profile::{RawLab, RawProfile};
use super::resolver::Resolver;
use super::secret::secret;
use super::yaml::{self, InputError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

/// The factory login; `skip`: where the secret comes from is checked, not read
/// (`certbench validate`: secrets are supplied where the run happens).
pub fn factory(rx: &Resolver, raw: &RawProfile, skip: bool) -> Option<Credentials> {
    let c = raw.credentials.as_ref()?;
    match secret(rx.base, &c.factory.password, skip) {
        Ok(password) => Some(Credentials {
            user: c.factory.user.clone(),
            password,
        }),
        Err(msg) => {
            rx.error(InputError::new(rx.file, None, "credentials.factory.password", msg));
            None
        }
    }
}

/// The lab's vendor default credentials (a file of `user:password` lines), added to the
/// built-in sweep list.
pub fn lab_defaults(rx: &Resolver, lab: &RawLab) -> Vec<(String, String)> {
    let Some(p) = &lab.default_credentials else {
        return Vec::new();
    };
    let path = rx.in_lab(&p.value);
    let read = crate::util::read_user_file(&path, &[rx.lab_base()], crate::util::limits::TEXT)
        .and_then(|b| String::from_utf8(b).map_err(|_| format!("{}: not UTF-8 text", path.display())));
    match read {
        Ok(text) => match parse(&text) {
            Ok(list) => list,
            Err((line, why)) => {
                rx.error(InputError::new(
                    &path,
                    Some(yaml::Pos {
                        line: u32::try_from(line).unwrap_or(u32::MAX),
                        column: 1,
                    }),
                    "default_credentials",
                    why,
                ));
                Vec::new()
            }
        },
        Err(e) => {
            rx.error(InputError::new(&rx.lab_file, Some(p.pos), "default_credentials", e));
            Vec::new()
        }
    }
}

/// Other units' TLS certificates (file name, DER), from the lab file.
pub fn other_unit_certificates(rx: &Resolver, lab: &RawLab) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for p in &lab.other_unit_certificates {
        let path = rx.in_lab(&p.value);
        let read = crate::util::read_user_file(&path, &[rx.lab_base()], crate::util::limits::TEXT)
            .and_then(|b| crate::tlscert::pem_certificates(&b).map_err(|e| format!("{}: {e}", path.display())));
        match read {
            Ok(ders) => {
                let name = p.value.display().to_string();
                out.extend(ders.into_iter().map(|d| (name.clone(), d)));
            }
            Err(why) => rx.error(InputError::new(
                &rx.lab_file,
                Some(p.pos),
                "other_unit_certificates",
                why,
            )),
        }
    }
    out
}

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
