//! The unit's label: its factory password, made at manufacture from the unit's serial number
//! and a secret the maker keeps (here a constant of the simulated factory), so every unit
//! has its own and none can be worked out from what the unit shows (EN 303 645 5.1-1, 5.1-2).
//! The flawed units: one password for every unit, or the last six hex digits of the MAC.

use sha2::{Digest, Sha256};

/// The simulated factory's secret (a real maker keeps it in its provisioning system).
const FACTORY_SECRET: &[u8] = b"simboard provisioning secret 2026: never on a unit";
/// No look-alike characters, as a label printer would choose.
const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY346789";

/// The factory password printed on the label of the unit with serial `serial`.
pub fn password(serial: &str) -> String {
    let mut h = Sha256::new();
    h.update(FACTORY_SECRET);
    h.update([0]);
    h.update(serial.as_bytes());
    h.finalize()
        .iter()
        .take(14)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// The MAC of the board's network link (the first interface that is not loopback), as the
/// password-from-mac flaw uses it: None when it has none (no namespace).
pub fn own_mac() -> Option<[u8; 6]> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lo")
        .collect();
    names.sort();
    names.iter().find_map(|n| {
        let text = std::fs::read_to_string(format!("/sys/class/net/{n}/address")).ok()?;
        let mut mac = [0u8; 6];
        let parts: Vec<&str> = text.trim().split(':').collect();
        if parts.len() != 6 {
            return None;
        }
        for (b, p) in mac.iter_mut().zip(parts) {
            *b = u8::from_str_radix(p, 16).ok()?;
        }
        (mac != [0; 6]).then_some(mac)
    })
}

/// The flawed scheme: the last six hex digits of the MAC, upper case.
pub fn from_mac(mac: &[u8; 6]) -> String {
    format!("{:02X}{:02X}{:02X}", mac[3], mac[4], mac[5])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_has_its_own_label_password() {
        let a = password("SB-0001");
        assert_eq!(a.len(), 14);
        assert_ne!(a, password("SB-0002"));
        assert_eq!(a, password("SB-0001"));
        assert_eq!(from_mac(&[2, 0x53, 0x42, 0xab, 0x0c, 0xef]), "AB0CEF");
    }

    /// The simulated board's lab holds the labels of its three units: they are what the
    /// units are made with.
    #[test]
    fn the_labs_label_files_are_the_units_passwords() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../labs/simboard-units");
        for (file, serial) in [("sb-0001", "SB-0001"), ("sb-0002", "SB-0002"), ("sb-0003", "SB-0003")] {
            let label = std::fs::read_to_string(dir.join(format!("{file}.password"))).expect("label file");
            assert_eq!(label.trim_end(), password(serial), "{file}");
        }
    }
}
