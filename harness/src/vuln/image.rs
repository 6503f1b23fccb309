//! What a firmware image ships: opened where certbench can open it (a directory tree, tar,
//! cpio newc — the `.swu` container —, gzip), package databases read (dpkg and opkg
//! `status`, apk `installed`), `/etc/os-release`, and every file's version strings.
//! A format certbench does not open (squashfs, UBI, xz, zstd, …) is listed as not
//! examined — never taken as clean.

use std::io::Read;
use std::path::Path;

use super::{Component, ComponentSource, strings};

/// Bounds: an image is the lab's input, but a gzip bomb is still refused.
const MAX_UNPACKED: u64 = 2 << 30;
const MAX_DEPTH: u32 = 4;

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Scan {
    pub components: Vec<Component>,
    /// Files read (their path in the image).
    pub files: usize,
    pub bytes: u64,
    /// Parts certbench could not open: (where, what it is).
    pub not_examined: Vec<(String, String)>,
    /// `ID:VERSION_ID` from os-release (`debian:12`), where the image has one.
    pub os: Option<String>,
}

/// Scans a directory tree (a root file system the maker or the lab extracted).
pub fn scan_dir(root: &Path) -> Result<Scan, String> {
    let mut scan = Scan::default();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for e in entries.flatten() {
            let p = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() {
                let rel = p.strip_prefix(root).unwrap_or(&p).to_string_lossy().to_string();
                let data = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                scan.file(&rel, &data, 0);
            }
        }
    }
    scan.finish();
    Ok(scan)
}

/// Scans an image file's bytes (`name` says where it came from).
pub fn scan_bytes(name: &str, data: &[u8]) -> Scan {
    let mut scan = Scan::default();
    scan.file(name, data, 0);
    scan.finish();
    scan
}

fn magic(data: &[u8]) -> Option<&'static str> {
    let m = |p: &[u8], at: usize| data.len() >= at + p.len() && &data[at..at + p.len()] == p;
    if m(b"hsqs", 0) || m(b"sqsh", 0) {
        Some("a squashfs file system")
    } else if m(b"UBI#", 0) {
        Some("a UBI volume")
    } else if m(&[0x31, 0x18, 0x10, 0x06], 0) {
        Some("a UBIFS file system")
    } else if m(&[0x85, 0x19], 0) || m(&[0x19, 0x85], 0) {
        Some("a JFFS2 file system")
    } else if m(&[0xfd, b'7', b'z', b'X', b'Z', 0], 0) {
        Some("xz-compressed data")
    } else if m(&[0x28, 0xb5, 0x2f, 0xfd], 0) {
        Some("zstd-compressed data")
    } else if m(b"BZh", 0) && data.len() > 4 && (b'1'..=b'9').contains(&data[3]) {
        Some("bzip2-compressed data")
    } else if m(&[0x5d, 0, 0], 0) {
        Some("LZMA-compressed data")
    } else {
        None
    }
}

impl Scan {
    fn file(&mut self, path: &str, data: &[u8], depth: u32) {
        self.files += 1;
        self.bytes += data.len() as u64;
        if depth < MAX_DEPTH {
            if data.starts_with(&[0x1f, 0x8b]) {
                let mut out = Vec::new();
                let r = flate2::read::MultiGzDecoder::new(data)
                    .take(MAX_UNPACKED)
                    .read_to_end(&mut out);
                match r {
                    Ok(_) => {
                        let inner = path.strip_suffix(".gz").unwrap_or(path);
                        return self.file(&format!("{inner} (gunzipped)"), &out, depth + 1);
                    }
                    Err(e) => {
                        self.not_examined
                            .push((path.to_string(), format!("gzip data that does not decompress: {e}")));
                        return;
                    }
                }
            }
            if data.len() >= 263 && &data[257..262] == b"ustar" {
                return self.tar(path, data, depth);
            }
            if data.starts_with(b"070701") || data.starts_with(b"070702") {
                return self.cpio(path, data, depth);
            }
            if let Some(what) = magic(data) {
                self.not_examined.push((
                    path.to_string(),
                    format!("{what}: certbench does not open it, so it is not examined"),
                ));
                return;
            }
        }
        let norm = path.trim_start_matches("./").trim_start_matches('/');
        let text_of = || String::from_utf8_lossy(data).to_string();
        if norm.ends_with("var/lib/dpkg/status") {
            self.packages(path, &text_of(), "dpkg");
        } else if norm.ends_with("usr/lib/opkg/status") || norm.ends_with("var/lib/opkg/status") {
            self.packages(path, &text_of(), "opkg");
        } else if norm.ends_with("lib/apk/db/installed") {
            self.apk(path, &text_of());
        } else if norm.ends_with("etc/os-release") || norm.ends_with("usr/lib/os-release") {
            self.os = os_release(&text_of()).or(self.os.take());
        }
        let found = strings::components(data, ComponentSource::Image, &format!("{path} (version string)"));
        self.components.extend(found);
    }

    fn tar(&mut self, path: &str, data: &[u8], depth: u32) {
        let mut at = 0usize;
        let mut long_name: Option<String> = None;
        while at + 512 <= data.len() {
            let h = &data[at..at + 512];
            if h.iter().all(|&b| b == 0) {
                return;
            }
            let field = |a: usize, b: usize| {
                let f = &h[a..b];
                let end = f.iter().position(|&c| c == 0).unwrap_or(f.len());
                String::from_utf8_lossy(&f[..end]).to_string()
            };
            let size = u64::from_str_radix(field(124, 136).trim(), 8).unwrap_or(0);
            let Ok(size) = usize::try_from(size) else { return };
            let kind = h[156];
            let mut name = field(0, 100);
            let prefix = field(345, 500);
            if !prefix.is_empty() {
                name = format!("{prefix}/{name}");
            }
            if let Some(l) = long_name.take() {
                name = l;
            }
            let body = at + 512;
            let Some(content) = data.get(body..body + size) else {
                self.not_examined
                    .push((format!("{path}:{name}"), "a tar archive cut short".into()));
                return;
            };
            match kind {
                b'L' => long_name = Some(String::from_utf8_lossy(content).trim_end_matches('\0').to_string()),
                b'0' | 0 | b'7' => self.file(&format!("{path}:{name}"), content, depth + 1),
                _ => {}
            }
            at = body + size.div_ceil(512) * 512;
        }
    }

    fn cpio(&mut self, path: &str, data: &[u8], depth: u32) {
        let mut at = 0usize;
        while at + 110 <= data.len() {
            let h = &data[at..at + 110];
            if !(h.starts_with(b"070701") || h.starts_with(b"070702")) {
                self.not_examined.push((
                    path.to_string(),
                    format!("a cpio archive with a bad header at byte {at}"),
                ));
                return;
            }
            let hex = |k: usize| {
                std::str::from_utf8(&h[6 + 8 * k..14 + 8 * k])
                    .ok()
                    .and_then(|s| usize::from_str_radix(s, 16).ok())
                    .unwrap_or(0)
            };
            let (mode, filesize, namesize) = (hex(1), hex(6), hex(11));
            let name_at = at + 110;
            let Some(name) = data.get(name_at..name_at + namesize.saturating_sub(1)) else {
                return;
            };
            let name = String::from_utf8_lossy(name).to_string();
            if name == "TRAILER!!!" {
                return;
            }
            let body = (name_at + namesize).div_ceil(4) * 4;
            let Some(content) = data.get(body..body + filesize) else {
                self.not_examined
                    .push((format!("{path}:{name}"), "a cpio archive cut short".into()));
                return;
            };
            if mode & 0o170000 == 0o100000 {
                self.file(&format!("{path}:{name}"), content, depth + 1);
            }
            at = (body + filesize).div_ceil(4) * 4;
        }
    }

    /// dpkg's and opkg's `status`: stanzas of `Package`, `Version`, `Status`, `Source`.
    fn packages(&mut self, path: &str, text: &str, kind: &str) {
        for stanza in text.split("\n\n") {
            let field = |name: &str| {
                stanza.lines().find_map(|l| {
                    l.strip_prefix(name)
                        .and_then(|r| r.strip_prefix(':'))
                        .map(|v| v.trim().to_string())
                })
            };
            let (Some(name), Some(version)) = (field("Package"), field("Version")) else {
                continue;
            };
            if let Some(st) = field("Status")
                && !st.ends_with(" installed")
            {
                continue;
            }
            let source_package = field("Source").map(|s| match s.split_once(' ') {
                Some((n, v)) => (n.to_string(), v.trim_matches(['(', ')', ' ']).to_string()),
                None => (s.clone(), version.clone()),
            });
            self.components.push(Component {
                purl: Some(format!(
                    "pkg:{}/{name}@{version}",
                    if kind == "dpkg" { "deb" } else { "opkg" }
                )),
                name,
                version,
                ecosystem: Some(if kind == "dpkg" { "Debian" } else { "OpenWrt" }.into()),
                source_package,
                cpe: None,
                origin: ComponentSource::Image,
                seen_in: format!("{path} ({kind} database)"),
            });
        }
    }

    /// apk's `installed`: `P:name`, `V:version`, `o:origin` per package.
    fn apk(&mut self, path: &str, text: &str) {
        for stanza in text.split("\n\n") {
            let field = |k: &str| stanza.lines().find_map(|l| l.strip_prefix(k).map(str::to_string));
            let (Some(name), Some(version)) = (field("P:"), field("V:")) else {
                continue;
            };
            let source_package = field("o:").map(|o| (o, version.clone()));
            self.components.push(Component {
                purl: Some(format!("pkg:apk/alpine/{name}@{version}")),
                name,
                version,
                ecosystem: Some("Alpine".into()),
                source_package,
                cpe: None,
                origin: ComponentSource::Image,
                seen_in: format!("{path} (apk database)"),
            });
        }
    }

    /// Distribution releases qualify the ecosystems: Debian packages of Debian 12 are
    /// `Debian:12` in OSV.
    fn finish(&mut self) {
        let Some(os) = &self.os else { return };
        let (id, ver) = os.split_once(':').unwrap_or((os.as_str(), ""));
        for c in &mut self.components {
            match (c.ecosystem.as_deref(), id) {
                (Some("Debian"), "debian") if !ver.is_empty() => c.ecosystem = Some(format!("Debian:{ver}")),
                (Some("Alpine"), "alpine") if !ver.is_empty() => {
                    let minor: Vec<&str> = ver.split('.').take(2).collect();
                    c.ecosystem = Some(format!("Alpine:v{}", minor.join(".")));
                }
                _ => {}
            }
        }
    }
}

/// `ID` and `VERSION_ID` of an os-release file, as `id:version`.
pub fn os_release(text: &str) -> Option<String> {
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
            .map(|v| v.trim().trim_matches('"').to_string())
    };
    Some(format!("{}:{}", get("ID")?, get("VERSION_ID").unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_entry(name: &str, body: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[124..135].copy_from_slice(format!("{:011o}", body.len()).as_bytes());
        h[156] = b'0';
        h[257..262].copy_from_slice(b"ustar");
        let mut out = h;
        out.extend_from_slice(body);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    const STATUS: &str = "Package: libssl3\nStatus: install ok installed\nSource: openssl\nVersion: 3.0.11-1~deb12u2\n\nPackage: busybox\nStatus: deinstall ok config-files\nVersion: 1:1.35.0-4\n\nPackage: zlib1g\nStatus: install ok installed\nSource: zlib (1:1.2.13.dfsg-1)\nVersion: 1:1.2.13.dfsg-1+b1\n";

    #[test]
    fn a_gzipped_tar_is_opened_and_its_databases_and_strings_read() {
        let mut t = tar_entry("./etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n");
        t.extend(tar_entry("./var/lib/dpkg/status", STATUS.as_bytes()));
        t.extend(tar_entry("./bin/busybox", b"\x7fELF\x00\x00BusyBox v1.36.1 (2024)\x00"));
        t.extend(tar_entry("./rootfs.squashfs", b"hsqs\x00\x00\x00\x00rest"));
        t.extend([0u8; 1024]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &t).expect("gzip");
        let s = scan_bytes("fw.tar.gz", &gz.finish().expect("gzip"));
        let got: Vec<String> = s
            .components
            .iter()
            .map(|c| format!("{} {} {}", c.name, c.version, c.ecosystem.as_deref().unwrap_or("-")))
            .collect();
        assert_eq!(
            got,
            [
                "libssl3 3.0.11-1~deb12u2 Debian:12",
                "zlib1g 1:1.2.13.dfsg-1+b1 Debian:12",
                "busybox 1.36.1 -"
            ]
        );
        assert_eq!(
            s.components[0].source_package,
            Some(("openssl".into(), "3.0.11-1~deb12u2".into()))
        );
        assert_eq!(
            s.components[1].source_package,
            Some(("zlib".into(), "1:1.2.13.dfsg-1".into()))
        );
        assert_eq!(s.not_examined.len(), 1, "{:?}", s.not_examined);
        assert!(s.not_examined[0].1.contains("squashfs"));
    }

    #[test]
    fn a_cpio_archive_is_opened_and_an_apk_database_read() {
        let mut c = Vec::new();
        for (name, body) in [
            (
                "lib/apk/db/installed",
                &b"P:musl\nV:1.2.4-r2\no:musl\n\nP:busybox\nV:1.36.1-r5\n"[..],
            ),
            ("etc/os-release", b"ID=alpine\nVERSION_ID=3.18.4\n"),
        ] {
            let n = name.len() + 1;
            c.extend(
                format!(
                    "070701{:08x}{:08x}{}{:08x}{}{:08x}{}",
                    1,
                    0o100644,
                    "0".repeat(32),
                    body.len(),
                    "0".repeat(32),
                    n,
                    "0".repeat(8)
                )
                .bytes(),
            );
            c.extend(name.bytes());
            c.push(0);
            while c.len() % 4 != 0 {
                c.push(0);
            }
            c.extend(body);
            while c.len() % 4 != 0 {
                c.push(0);
            }
        }
        let s = scan_bytes("update.swu", &c);
        let got: Vec<String> = s
            .components
            .iter()
            .map(|c| format!("{} {}", c.name, c.ecosystem.as_deref().unwrap_or("-")))
            .collect();
        assert_eq!(got, ["musl Alpine:v3.18", "busybox Alpine:v3.18"]);
    }

    /// This machine's own dpkg database is a real one: every installed package it lists is
    /// read, with the version `dpkg-query` gives.
    #[test]
    fn the_dpkg_database_of_a_real_debian_is_read_as_dpkg_query_reads_it() {
        let Ok(text) = std::fs::read_to_string("/var/lib/dpkg/status") else {
            eprintln!("not a Debian machine");
            return;
        };
        let Ok(out) = std::process::Command::new("dpkg-query")
            .args(["-W", "-f=${db:Status-Status} ${Package} ${Version}\n"])
            .output()
        else {
            return;
        };
        let mut want: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("installed "))
            .map(str::to_string)
            .collect();
        let s = scan_bytes("var/lib/dpkg/status", text.as_bytes());
        let mut got: Vec<String> = s
            .components
            .iter()
            .filter(|c| c.ecosystem.is_some())
            .map(|c| format!("{} {}", c.name, c.version))
            .collect();
        want.sort();
        got.sort();
        assert!(want.len() > 100, "{}", want.len());
        assert_eq!(got, want);
    }
}
