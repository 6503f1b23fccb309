//! Components found by their version strings (`harness/data/version-strings.yaml`): in the
//! files of a firmware image, in service banners, in a command's output.

use std::sync::OnceLock;

use regex::Regex;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    components: Vec<RawPattern>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPattern {
    name: String,
    cpe: String,
    #[serde(default)]
    contains: Option<String>,
    version: String,
}

/// One compiled row of the table.
#[derive(Debug)]
pub struct Pattern {
    pub name: String,
    pub cpe: String,
    contains: Option<String>,
    version: Regex,
}

/// The table, compiled once. Its validity is a unit test, so a bad row never ships.
pub fn table() -> &'static [Pattern] {
    static TABLE: OnceLock<Vec<Pattern>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let raw: RawTable = serde_saphyr::from_str(include_str!("../../data/version-strings.yaml"))
            .unwrap_or(RawTable { components: Vec::new() });
        raw.components
            .into_iter()
            .filter_map(|r| {
                Some(Pattern {
                    version: Regex::new(&r.version).ok()?,
                    name: r.name,
                    cpe: r.cpe,
                    contains: r.contains,
                })
            })
            .collect()
    })
}

/// The printable strings of `bytes` (runs of at least 4 printable ASCII bytes or tabs),
/// one per line, as `strings` prints them. Text (a banner, a command's output) passes
/// through with its lines.
pub fn printable(bytes: &[u8]) -> String {
    const fn table() -> [bool; 256] {
        let mut t = [false; 256];
        let mut b = 0x20;
        while b < 0x7f {
            t[b] = true;
            b += 1;
        }
        t[b'\t' as usize] = true;
        t
    }
    static PRINTABLE: [bool; 256] = table();
    let mut out = String::with_capacity(bytes.len() / 16);
    let (n, mut i) = (bytes.len(), 0);
    while i < n {
        while i < n && !PRINTABLE[usize::from(bytes[i])] {
            i += 1;
        }
        let start = i;
        while i < n && PRINTABLE[usize::from(bytes[i])] {
            i += 1;
        }
        if i - start >= 4 {
            // printable ASCII only: always UTF-8
            out.push_str(std::str::from_utf8(&bytes[start..i]).unwrap_or(""));
            out.push('\n');
        }
    }
    out
}

/// (table name, CPE, version) for each component the text shows, once per name (the first
/// version found; a second different version of the same component is reported too).
pub fn find(text: &str) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    for p in table() {
        if let Some(c) = &p.contains
            && !text.contains(c.as_str())
        {
            continue;
        }
        for caps in p.version.captures_iter(text) {
            let Some(v) = caps.name("version").or_else(|| caps.name("v2")) else {
                continue;
            };
            let v = v.as_str().to_string();
            if !out.iter().any(|(n, _, x)| n == &p.name && x == &v) {
                out.push((p.name.clone(), p.cpe.clone(), v));
            }
        }
    }
    // `9.2` and `9.2p1` in one text are one release said twice: the fuller one stays
    let all = out.clone();
    out.retain(|(n, _, v)| {
        !all.iter()
            .any(|(m, _, w)| m == n && w != v && w.starts_with(v.as_str()))
    });
    out
}

/// The components `bytes` show by their version strings, each recorded as seen `seen_in`
/// by `origin` (a file of an image, a banner, a command's answer).
pub fn components(bytes: &[u8], origin: super::ComponentSource, seen_in: &str) -> Vec<super::Component> {
    find(&printable(bytes))
        .into_iter()
        .map(|(name, cpe, version)| super::Component {
            name,
            version,
            ecosystem: None,
            source_package: None,
            purl: None,
            cpe: Some(cpe),
            origin,
            seen_in: seen_in.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_compiles_every_row() {
        let raw: RawTable =
            serde_saphyr::from_str(include_str!("../../data/version-strings.yaml")).expect("the table is YAML");
        assert_eq!(table().len(), raw.components.len(), "a row's regex does not compile");
        assert!(table().len() >= 17);
    }

    #[test]
    fn strings_are_runs_of_printable_bytes() {
        let s = printable(b"\x00\x01abc\x00OpenSSL 1.0.1f 6 Jan 2014\x00\xffBusyBox v1.36.1 (x)\x00zz");
        assert_eq!(s, "OpenSSL 1.0.1f 6 Jan 2014\nBusyBox v1.36.1 (x)\n");
        let found = find(&s);
        assert!(found.contains(&("openssl".into(), "openssl:openssl".into(), "1.0.1f".into())));
        assert!(found.contains(&("busybox".into(), "busybox:busybox".into(), "1.36.1".into())));
    }

    #[test]
    fn banners_are_read_too() {
        let f = find("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\nServer: lighttpd/1.4.69\n");
        assert_eq!(
            f.iter().map(|(n, _, v)| format!("{n} {v}")).collect::<Vec<_>>(),
            ["openssh 9.2p1", "lighttpd 1.4.69"]
        );
        assert!(find("nothing here 1.2.3").is_empty());
    }

    /// Each row on a real binary from Debian's package: the version the pattern reads is the
    /// upstream part of the package's version (`dpkg-query`). Binaries not on this machine
    /// are extracted by `.ci/run` into /var/cache/certbench-deps/vstrings; under CI every row
    /// with a Debian binary must be proven.
    #[test]
    fn every_pattern_reads_the_version_of_a_real_debian_binary() {
        let deps = std::path::Path::new("/var/cache/certbench-deps");
        let x = deps.join("vstrings");
        let root = x.join("root");
        let cases: Vec<(&str, &str, std::path::PathBuf)> = vec![
            ("busybox", "busybox", "/bin/busybox".into()),
            ("openssl", "libssl3", "/usr/lib/x86_64-linux-gnu/libcrypto.so.3".into()),
            ("openssh", "openssh-server", deps.join("sshd")),
            ("lighttpd", "lighttpd", deps.join("lighttpd/usr/sbin/lighttpd")),
            ("mosquitto", "mosquitto", "/usr/sbin/mosquitto".into()),
            ("curl", "libcurl4", "/usr/lib/x86_64-linux-gnu/libcurl.so.4".into()),
            ("dnsmasq", "dnsmasq-base", "/usr/sbin/dnsmasq".into()),
            ("zlib", "zlib1g", "/usr/lib/x86_64-linux-gnu/libz.so.1".into()),
            ("glibc", "libc6", "/lib/x86_64-linux-gnu/libc.so.6".into()),
            (
                "sqlite",
                "libsqlite3-0",
                "/usr/lib/x86_64-linux-gnu/libsqlite3.so.0".into(),
            ),
            ("dropbear", "dropbear-bin", root.join("usr/sbin/dropbear")),
            ("wpa_supplicant", "wpasupplicant", root.join("sbin/wpa_supplicant")),
            ("hostapd", "hostapd", root.join("usr/sbin/hostapd")),
            ("miniupnpd", "miniupnpd-nftables", root.join("usr/sbin/miniupnpd")),
            ("avahi", "avahi-daemon", root.join("usr/sbin/avahi-daemon")),
            ("u-boot", "u-boot-qemu", root.join("usr/lib/u-boot/qemu_arm/u-boot.bin")),
        ];
        let mut proven = Vec::new();
        let mut missing = Vec::new();
        for (name, package, path) in cases {
            let Ok(bytes) = std::fs::read(&path) else {
                missing.push(format!("{name} ({})", path.display()));
                continue;
            };
            let want = debian_upstream(package, &x);
            let found: Vec<String> = find(&printable(&bytes))
                .into_iter()
                .filter(|(n, _, _)| n == name)
                .map(|(_, _, v)| v)
                .collect();
            assert!(!found.is_empty(), "{name}: no version found in {}", path.display());
            if let Some(w) = want {
                assert!(
                    found.iter().all(|v| w.starts_with(v.as_str())),
                    "{name}: found {found:?}, package {package} is {w}"
                );
            }
            proven.push(name);
        }
        eprintln!("proven on Debian binaries: {proven:?}; not on this machine: {missing:?}");
        if std::env::var_os("CI").is_some() {
            assert!(
                missing.is_empty(),
                "under CI every Debian binary is present (.ci/run): missing {missing:?}"
            );
        }
    }

    /// The upstream version of a Debian package, from this machine's dpkg database or the
    /// control file .ci/run kept beside the extracted package.
    fn debian_upstream(package: &str, extracted: &std::path::Path) -> Option<String> {
        let out = std::process::Command::new("dpkg-query")
            .args(["-W", "-f=${Version}", package])
            .output()
            .ok()
            .filter(|o| o.status.success() && !o.stdout.is_empty())
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .or_else(|| std::fs::read_to_string(extracted.join(format!("{package}.version"))).ok())?;
        let v = out.trim();
        let v = v.split_once(':').map_or(v, |(_, r)| r);
        let v = v.rsplit_once('-').map_or(v, |(u, _)| u);
        // Debian's repacks: 1.2.13.dfsg, 2.10+dfsg
        Some(
            v.split(['+', '~'])
                .next()
                .unwrap_or(v)
                .trim_end_matches(".dfsg")
                .to_string(),
        )
    }
}
