//! Small helpers every layer may use; depends on nothing else in the crate.

use std::path::Path;

use sha2::{Digest, Sha256};

/// Lower-case hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Hex SHA-256 of `b`.
pub fn sha256_hex(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

/// Hex SHA-256 and length of a file's contents; None when it cannot be read.
pub fn sha256_file(path: &Path) -> Option<(String, u64)> {
    let bytes = std::fs::read(path).ok()?;
    Some((sha256_hex(&bytes), bytes.len() as u64))
}

/// A MAC address, `aa:bb:cc:dd:ee:ff` (or with `-`).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.trim().split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return None;
        }
        m[i] = u8::from_str_radix(p, 16).ok()?;
    }
    Some(m)
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                A[(n >> (18 - 6 * i)) as usize & 63] as char
            } else {
                '='
            });
        }
    }
    out
}

/// The base64 characters that depend only on `v`, for `v` starting at each of the three
/// byte alignments of a longer encoded text: what any base64 carrying `v` contains.
pub fn base64_fragments(v: &[u8]) -> Vec<String> {
    (0..3usize)
        .filter_map(|a| {
            let mut input = vec![0u8; a];
            input.extend_from_slice(v);
            input.extend_from_slice(&[0, 0]);
            let enc = base64(&input);
            // character k holds bits 6k..6k+6; the value's bits are 8a..8(a+len)
            let start = (8 * a).div_ceil(6);
            let end = 8 * (a + v.len()) / 6;
            enc.get(start..end).map(str::to_string)
        })
        .collect()
}

/// The folder a file is in: `.` for a bare file name (whose parent is the empty path, which
/// no command can run in and no path resolves against).
pub fn folder_of(file: &Path) -> &Path {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Size limits of the files a profile or lab names, by what they hold.
pub mod limits {
    /// A list (default credentials), a certificate, a secret, a document.
    pub const TEXT: u64 = 1 << 20;
    /// A firmware or update image.
    pub const IMAGE: u64 = 512 << 20;
    /// A file of a run's own results read back (events, evidence): a run of a thousand
    /// testcases writes several MB of events and flow records of over 1 MB per unit.
    pub const RUN_FILE: u64 = 256 << 20;
}

/// The one gate for every file a profile or lab file names (credentials lists, other
/// units' certificates, secrets, documents, images — at `validate` and at `run` alike):
/// the path, symbolic links resolved, must lie inside one of `roots` (the naming file's
/// folder; for paths made at run time, the run's work folder), be a regular file (never a
/// FIFO, which would block, or a device such as /dev/zero, which never ends) and hold at
/// most `max` bytes. Returns the resolved path.
pub fn check_user_file(path: &Path, roots: &[&Path], max: u64) -> Result<std::path::PathBuf, String> {
    let real = path.canonicalize().map_err(|e| format!("{}: {e}", path.display()))?;
    let inside = roots
        .iter()
        .filter_map(|r| r.canonicalize().ok())
        .any(|r| real.starts_with(&r));
    if !inside {
        let shown: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        return Err(format!(
            "{} leads to {}, outside {} (a file a profile or lab names must lie inside its folder, symbolic links followed)",
            path.display(),
            real.display(),
            shown.join(" or ")
        ));
    }
    let meta = std::fs::metadata(&real).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!(
            "{} is not a regular file (a FIFO, a device or a folder is never read)",
            path.display()
        ));
    }
    if meta.len() > max {
        return Err(format!("{} is larger than the limit of {max} bytes", path.display()));
    }
    Ok(real)
}

/// A named file whose path was resolved earlier (and confined to its profile's folder at
/// load): read through the gate with its own folder as the root, so a link swapped in
/// since still cannot lead out, and a FIFO or device is never opened.
pub fn read_named_file(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    read_user_file(path, &[folder_of(path)], max)
}

/// [`read_user_file`] for a document that must be UTF-8 text (an SBOM, a VEX, vulnerability data).
pub fn read_user_text(path: &Path, roots: &[&Path], max: u64) -> Result<String, String> {
    read_user_file(path, roots, max).and_then(|b| String::from_utf8(b).map_err(|_| "not UTF-8 text".to_string()))
}

/// Reads a file through [`check_user_file`], bounded by the bytes actually read.
pub fn read_user_file(path: &Path, roots: &[&Path], max: u64) -> Result<Vec<u8>, String> {
    let real = check_user_file(path, roots, max)?;
    read_regular(&real, max).map_err(|e| match e {
        ReadError::TooLarge => format!("{} is larger than the limit of {max} bytes", path.display()),
        ReadError::NotRegular => format!("{} is not a regular file", path.display()),
        ReadError::Io(e) => format!("{}: {e}", path.display()),
    })
}

/// Why [`read_regular`] read nothing.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    /// A FIFO would block, a device such as /dev/zero would never end.
    NotRegular,
    /// More bytes than the limit (counted as read, not as the metadata claims).
    TooLarge,
}

/// A regular file's bytes, at most `max` of them actually read: the one bounded reader of
/// user files (profiles, labs and scenarios too, which are not confined: the user names
/// them on the command line).
pub fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular);
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(max + 1).read_to_end(&mut bytes))
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge);
    }
    Ok(bytes)
}

/// `application/x-www-form-urlencoded` for one value (how certbench posts a login form;
/// the redactor masks secrets in this form too).
pub fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' => "+".into(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// One JSON object per line (items that do not serialise are left out).
pub fn jsonl<T: serde::Serialize>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .filter_map(|r| serde_json::to_string(&r).ok())
        .map(|l| l + "\n")
        .collect()
}

/// Whether `pid` is a running certbench: a zombie (killed, not yet reaped: where PID 1
/// of a container does not reap, for as long as it lives) is not.
pub fn alive_certbench(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "PID (COMM) STATE …": COMM may hold spaces and parentheses, so split at the last ')'
    let Some((head, tail)) = stat.rsplit_once(')') else {
        return false;
    };
    let comm = head.split_once('(').map(|(_, c)| c).unwrap_or("");
    let state = tail.split_whitespace().next().unwrap_or("");
    comm.starts_with("certbench") && state != "Z" && state != "X"
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_file_name_is_in_the_current_folder() {
        // `current_dir("")` fails: every command of a profile given as `-d dev.yaml` did
        assert_eq!(folder_of(Path::new("dev.yaml")), Path::new("."));
        assert_eq!(folder_of(Path::new("devices/dev.yaml")), Path::new("devices"));
        assert_eq!(folder_of(Path::new("/dev.yaml")), Path::new("/"));
    }

    #[test]
    fn user_files_stay_in_their_folder_and_are_regular_and_bounded() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("lab");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("ok.txt"), "admin:admin\n").unwrap();
        std::fs::write(d.path().join("host-secret"), "root:x:0:0\n").unwrap();
        std::os::unix::fs::symlink(d.path().join("host-secret"), root.join("link.txt")).unwrap();
        assert_eq!(
            read_user_file(&root.join("ok.txt"), &[&root], 100).unwrap(),
            b"admin:admin\n"
        );
        let e = read_user_file(&root.join("link.txt"), &[&root], 100).unwrap_err();
        assert!(e.contains("outside"), "{e}");
        let e = read_user_file(&root.join("../host-secret"), &[&root], 100).unwrap_err();
        assert!(e.contains("outside"), "{e}");
        // a device and a FIFO are refused without being opened (a FIFO would block)
        std::os::unix::fs::symlink("/dev/zero", root.join("zero")).unwrap();
        assert!(
            read_user_file(&root.join("zero"), &[&root, Path::new("/dev")], 100)
                .unwrap_err()
                .contains("not a regular file")
        );
        let fifo = root.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(
            read_user_file(&fifo, &[&root], 100)
                .unwrap_err()
                .contains("not a regular file")
        );
        assert!(
            read_user_file(&root.join("ok.txt"), &[&root], 4)
                .unwrap_err()
                .contains("larger than")
        );
    }

    #[test]
    fn hex_and_sha256_of_known_input() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
