//! Common IoT default credentials for the PWD-03 sweep.
//!
//! The built-in list is the user/password table of the Mirai botnet's scanner, as published
//! with its source code in 2016 (duplicates removed; an empty password is written ""). It
//! is what a botnet tries first on telnet, so a device that lets any of these in is one
//! scan away from being recruited. A lab adds vendor defaults in a file (lab binding
//! `default_credentials`), one `user:password` per line.

/// (user, password) pairs, in the scanner's order.
pub const MIRAI: &[(&str, &str)] = &[
    ("root", "xc3511"),
    ("root", "vizxv"),
    ("root", "admin"),
    ("admin", "admin"),
    ("root", "888888"),
    ("root", "xmhdipc"),
    ("root", "default"),
    ("root", "juantech"),
    ("root", "123456"),
    ("root", "54321"),
    ("support", "support"),
    ("root", ""),
    ("admin", "password"),
    ("root", "root"),
    ("root", "12345"),
    ("user", "user"),
    ("admin", ""),
    ("root", "pass"),
    ("admin", "admin1234"),
    ("root", "1111"),
    ("admin", "smcadmin"),
    ("admin", "1111"),
    ("root", "666666"),
    ("root", "password"),
    ("root", "1234"),
    ("root", "klv123"),
    ("Administrator", "admin"),
    ("service", "service"),
    ("supervisor", "supervisor"),
    ("guest", "guest"),
    ("guest", "12345"),
    ("admin1", "password"),
    ("administrator", "1234"),
    ("666666", "666666"),
    ("888888", "888888"),
    ("ubnt", "ubnt"),
    ("root", "klv1234"),
    ("root", "Zte521"),
    ("root", "hi3518"),
    ("root", "jvbzd"),
    ("root", "anko"),
    ("root", "zlxx."),
    ("root", "7ujMko0vizxv"),
    ("root", "7ujMko0admin"),
    ("root", "system"),
    ("root", "ikwb"),
    ("root", "dreambox"),
    ("root", "user"),
    ("root", "realtek"),
    ("root", "00000000"),
    ("admin", "1111111"),
    ("admin", "1234"),
    ("admin", "12345"),
    ("admin", "54321"),
    ("admin", "123456"),
    ("admin", "7ujMko0admin"),
    ("admin", "pass"),
    ("admin", "meinsm"),
    ("tech", "tech"),
    ("mother", "fucker"),
];

/// One entry of the sweep: where it comes from, for the evidence (passwords are never
/// written, only `list #n`).
#[derive(Debug, Clone)]
pub struct Entry {
    pub user: String,
    pub password: String,
    /// e.g. `mirai #12` or `lab #3`.
    pub label: String,
}

/// The built-in list, then the lab's entries.
pub fn entries(lab: &[(String, String)]) -> Vec<Entry> {
    let builtin = MIRAI.iter().enumerate().map(|(i, (u, p))| Entry {
        user: (*u).to_string(),
        password: (*p).to_string(),
        label: format!("mirai #{}", i + 1),
    });
    let extra = lab.iter().enumerate().map(|(i, (u, p))| Entry {
        user: u.clone(),
        password: p.clone(),
        label: format!("lab #{}", i + 1),
    });
    builtin.chain(extra).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_builtin_list_has_no_duplicates_and_a_lab_file_names_its_bad_line() {
        let mut seen = std::collections::BTreeSet::new();
        assert!(super::MIRAI.iter().all(|e| seen.insert(*e)));
        assert_eq!(super::MIRAI.len(), 60);
        assert_eq!(
            crate::config::credentials::parse("# vendor\nadmin:Vendor1\n\ncam:").expect("parses"),
            vec![("admin".into(), "Vendor1".into()), ("cam".into(), String::new())]
        );
        assert_eq!(
            crate::config::credentials::parse("ok:1\nnocolon\n").err().map(|e| e.0),
            Some(2)
        );
    }
}
