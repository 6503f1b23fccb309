//! A model's units as the lab holds them (lab `units:`): several samples of one model, each
//! with its label (serial number, factory password) and its wiring. A run over them shares
//! the suite out (`run::units`); the unique-password check (PWD-05) tries every unit's label
//! on every other unit.

/// One unit of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Unique in the lab file: results folder, JUnit, terminal prefix.
    pub name: String,
    /// The serial number on its label, if the lab gave it.
    pub serial: Option<String>,
    /// The factory password on its label (a secret), if the lab gave it; else the profile's.
    pub password: Option<String>,
    /// Its MAC address as the label says, if given: a simulated or emulated unit's network
    /// link is given this address.
    pub mac: Option<[u8; 6]>,
    /// Overrides for this unit: the console port and `{{name}}` values.
    pub port: Option<String>,
    pub vars: std::collections::BTreeMap<String, String>,
}

impl Unit {
    /// The unit as a testcase names it: its name, and its serial when it differs.
    pub fn label(&self) -> String {
        match &self.serial {
            Some(s) if s != &self.name => format!("{} (serial {s})", self.name),
            _ => self.name.clone(),
        }
    }
}

/// `aa:bb:cc:dd:ee:ff` (or with `-`) as six bytes.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(parts) {
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    Some(mac)
}

pub fn format_mac(m: &[u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// What a unit shows the world, from which a pre-installed password must not follow
/// (EN 303 645 5.1-2): its MAC addresses (seen on the bench), serial number, vendor, model.
#[derive(Debug, Clone, Default)]
pub struct Shown {
    pub macs: Vec<[u8; 6]>,
    pub serials: Vec<String>,
    pub names: Vec<String>,
}

/// The known schemes by which makers derive a unit's password from what it shows: each
/// candidate password with the scheme's name (e.g. `last 6 hex digits of MAC 02:…, upper
/// case`). Case matters: both cases are made where a scheme could use either.
pub fn derivations(shown: &Shown) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    fn both(out: &mut Vec<(String, String)>, scheme: String, v: String) {
        out.push((format!("{scheme}, lower case"), v.to_lowercase()));
        out.push((format!("{scheme}, upper case"), v.to_uppercase()));
    }
    let digests = |text: &str| -> Vec<(&'static str, String)> {
        use sha2::Digest;
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        vec![
            ("MD5", format!("{:x}", md5::compute(text.as_bytes()))),
            (
                "SHA-1",
                hex(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, text.as_bytes()).as_ref()),
            ),
            ("SHA-256", hex(&sha2::Sha256::digest(text.as_bytes()))),
        ]
    };
    for m in &shown.macs {
        let mac = format_mac(m);
        let hex: String = mac.replace(':', "");
        for n in [4usize, 6, 8, 12] {
            both(
                &mut out,
                format!("last {n} hex digits of MAC {mac}"),
                hex[12 - n..].to_string(),
            );
        }
        both(&mut out, format!("MAC {mac} with its colons"), mac.clone());
        both(&mut out, format!("MAC {mac} with dashes"), mac.replace(':', "-"));
        both(
            &mut out,
            format!("MAC {mac} hex digits reversed"),
            hex.chars().rev().collect(),
        );
        let last3 = u32::from_be_bytes([0, m[3], m[4], m[5]]);
        let last2 = u32::from_be_bytes([0, 0, m[4], m[5]]);
        out.push((format!("last 3 bytes of MAC {mac} in decimal"), last3.to_string()));
        out.push((
            format!("last 3 bytes of MAC {mac} in decimal, 8 digits"),
            format!("{last3:08}"),
        ));
        out.push((format!("last 2 bytes of MAC {mac} in decimal"), last2.to_string()));
        for spelled in [hex.clone(), hex.to_uppercase(), mac.clone(), mac.to_uppercase()] {
            for (alg, d) in digests(&spelled) {
                for n in [6usize, 8, 10, 12, 16] {
                    both(
                        &mut out,
                        format!("first {n} hex digits of {alg}(\"{spelled}\")"),
                        d[..n].to_string(),
                    );
                }
            }
        }
        for name in &shown.names {
            let token: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
            for n in [4usize, 6] {
                both(
                    &mut out,
                    format!("{name:?} and the last {n} hex digits of MAC {mac}"),
                    format!("{token}{}", &hex[12 - n..]),
                );
            }
        }
    }
    for s in &shown.serials {
        let chars: Vec<char> = s.chars().collect();
        both(&mut out, format!("serial number {s}"), s.clone());
        let plain: String = chars.iter().filter(|c| c.is_ascii_alphanumeric()).collect();
        both(&mut out, format!("serial number {s} without separators"), plain.clone());
        let digits: String = chars.iter().filter(|c| c.is_ascii_digit()).collect();
        if digits.len() >= 4 {
            out.push((format!("digits of serial number {s}"), digits));
        }
        for n in [4usize, 6, 8] {
            if plain.len() > n {
                both(
                    &mut out,
                    format!("last {n} characters of serial number {s}"),
                    plain[plain.len() - n..].to_string(),
                );
            }
        }
        both(
            &mut out,
            format!("serial number {s} reversed"),
            chars.iter().rev().collect(),
        );
        for (alg, d) in digests(s) {
            for n in [6usize, 8, 10, 12, 16] {
                both(
                    &mut out,
                    format!("first {n} hex digits of {alg}(serial {s})"),
                    d[..n].to_string(),
                );
            }
        }
    }
    out
}

/// Whether `password` follows from what the unit shows: the first scheme that makes it, or
/// a vendor or model name followed by digits only.
pub fn derived(password: &str, shown: &Shown) -> Option<String> {
    if let Some((scheme, _)) = derivations(shown).into_iter().find(|(_, v)| v == password) {
        return Some(scheme);
    }
    let lower = password.to_lowercase();
    shown.names.iter().find_map(|name| {
        let token: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_lowercase();
        let rest = lower.strip_prefix(&token)?;
        (token.len() >= 3 && rest.trim_start_matches(['-', '_']).chars().all(|c| c.is_ascii_digit()))
            .then(|| format!("the name {name:?} followed by digits only"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown() -> Shown {
        Shown {
            macs: vec![[0x02, 0x53, 0x42, 0xab, 0x0c, 0xef]],
            serials: vec!["SB-0001-7731".into()],
            names: vec!["Acme".into(), "SimBoard SB-1".into()],
        }
    }

    #[test]
    fn the_known_schemes_are_each_found_and_named() {
        let s = shown();
        let md5_mac = format!("{:x}", md5::compute(b"025342ab0cef"))[..8].to_string();
        for (password, says) in [
            ("AB0CEF", "last 6 hex digits of MAC 02:53:42:ab:0c:ef, upper case"),
            ("0cef", "last 4 hex digits of MAC 02:53:42:ab:0c:ef, lower case"),
            ("11209967", "last 3 bytes of MAC 02:53:42:ab:0c:ef in decimal"),
            (
                md5_mac.as_str(),
                "first 8 hex digits of MD5(\"025342ab0cef\"), lower case",
            ),
            ("7731", "last 4 characters of serial number SB-0001-7731, lower case"),
            (
                "SB00017731",
                "serial number SB-0001-7731 without separators, upper case",
            ),
            ("acme2024", "the name \"Acme\" followed by digits only"),
            (
                "simboardsb1ab0cef",
                "\"SimBoard SB-1\" and the last 6 hex digits of MAC 02:53:42:ab:0c:ef, lower case",
            ),
        ] {
            assert_eq!(derived(password, &s).as_deref(), Some(says), "{password}");
        }
    }

    #[test]
    fn a_random_label_password_follows_from_nothing_shown() {
        for p in ["vFcfNAFeaKwwMG", "correct horse battery", "AB0CEE", "acme-admin"] {
            assert_eq!(derived(p, &shown()), None, "{p}");
        }
        // nothing shown: nothing derivable but the names
        assert_eq!(derived("AB0CEF", &Shown::default()), None);
    }

    #[test]
    fn macs_parse_in_both_spellings_and_nothing_else() {
        assert_eq!(parse_mac("02:53:42:00:00:01"), Some([2, 0x53, 0x42, 0, 0, 1]));
        assert_eq!(parse_mac("02-53-42-00-00-0A"), Some([2, 0x53, 0x42, 0, 0, 10]));
        assert_eq!(format_mac(&[2, 0x53, 0x42, 0, 0, 10]), "02:53:42:00:00:0a");
        for bad in [
            "",
            "02:53:42:00:00",
            "02:53:42:00:00:001",
            "zz:53:42:00:00:01",
            "0253420000:01",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }
}
