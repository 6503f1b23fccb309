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

#[cfg(test)]
mod tests {
    use super::*;

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
