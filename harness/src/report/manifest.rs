//! The evidence bundle: a manifest with the SHA-256 of every artifact in a run folder and
//! an optional Ed25519 signature by a lab key, so `certbench verify` can name any file
//! that changed after the run.

use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::util::{hex, sha256_file};

pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.sig";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub run_id: String,
    pub algorithm: String,
    pub files: Vec<Entry>,
}

/// Regular files below `dir` (relative paths); anything else (symbolic links, FIFOs,
/// sockets, devices) goes to `special` and is never followed or read.
fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>, special: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut v: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    v.sort();
    for p in v {
        let Ok(rel) = p.strip_prefix(root).map(Path::to_path_buf) else {
            continue;
        };
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let ft = meta.file_type();
        if ft.is_dir() {
            walk(root, &p, out, special);
        } else if ft.is_file() {
            if rel != Path::new(MANIFEST) && rel != Path::new(SIGNATURE) {
                out.push(rel);
            }
        } else {
            let kind = if ft.is_symlink() {
                "symbolic link"
            } else {
                "special file"
            };
            special.push(format!("{} ({kind})", rel.display()));
        }
    }
}

fn entries(dir: &Path) -> Vec<Entry> {
    entries_and_special(dir).0
}

fn entries_and_special(dir: &Path) -> (Vec<Entry>, Vec<String>) {
    let mut files = Vec::new();
    let mut special = Vec::new();
    walk(dir, dir, &mut files, &mut special);
    let entries = files
        .into_iter()
        .filter_map(|rel| {
            let (sha256, bytes) = sha256_file(&dir.join(&rel))?;
            Some(Entry {
                path: rel.to_string_lossy().into_owned(),
                sha256,
                bytes,
            })
        })
        .collect();
    (entries, special)
}

/// Why a manifest, a signature or a lab key could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{}: {source}", path.display())]
    File { path: PathBuf, source: std::io::Error },
    /// A lab key file that does not hold 64 hex digits.
    #[error("{}: {why}", path.display())]
    Key { path: PathBuf, why: String },
    #[error("{what}: {source}")]
    Write { what: &'static str, source: std::io::Error },
    #[error("{MANIFEST}: {0}")]
    Parse(serde_json::Error),
    #[error("{0}")]
    Encode(serde_json::Error),
}

impl ManifestError {
    fn file(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| ManifestError::File {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn parse_hex32(s: &str) -> Result<[u8; 32], String> {
    let s = s.trim();
    if s.len() != 64 {
        return Err(format!("expected 64 hex digits, found {} characters", s.len()));
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| "not hexadecimal".to_string())?;
    }
    Ok(out)
}

/// Reads a lab signing key: a file holding the 32-byte Ed25519 seed as hex.
pub fn read_key(path: &Path) -> Result<SigningKey, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(ManifestError::file(path))?;
    Ok(SigningKey::from_bytes(&parse_hex32(&text).map_err(|why| {
        ManifestError::Key {
            path: path.to_path_buf(),
            why,
        }
    })?))
}

/// Makes a new lab key; returns the public key as hex.
pub fn keygen(path: &Path) -> Result<String, ManifestError> {
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(ManifestError::file(path))?;
    writeln!(f, "{}", hex(key.as_bytes())).map_err(ManifestError::file(path))?;
    Ok(hex(key.verifying_key().as_bytes()))
}

/// Writes manifest.json (and manifest.sig when a key is given) for a run folder.
pub fn write(dir: &Path, run_id: &str, key: Option<&SigningKey>) -> Result<(), ManifestError> {
    let m = Manifest {
        run_id: run_id.into(),
        algorithm: "sha256".into(),
        files: entries(dir),
    };
    let text = serde_json::to_string_pretty(&m).map_err(ManifestError::Encode)?;
    std::fs::write(dir.join(MANIFEST), &text).map_err(|source| ManifestError::Write {
        what: "manifest",
        source,
    })?;
    if let Some(k) = key {
        let sig = k.sign(text.as_bytes());
        let body = format!(
            "ed25519 {} {}\n",
            hex(k.verifying_key().as_bytes()),
            hex(&sig.to_bytes())
        );
        std::fs::write(dir.join(SIGNATURE), body).map_err(|source| ManifestError::Write {
            what: "signature",
            source,
        })?;
    }
    Ok(())
}

/// What `verify` found.
#[derive(Debug, Default, PartialEq)]
pub struct Findings {
    pub changed: Vec<String>,
    pub missing: Vec<String>,
    pub unlisted: Vec<String>,
    /// Symbolic links and special files: reported, never followed or read.
    pub special: Vec<String>,
    /// None: no signature file. Some(Ok(key)): valid, by a key the verifier trusts;
    /// Some(Err(why)): invalid or by an untrusted key.
    pub signature: Option<Result<String, String>>,
}

impl Findings {
    /// Intact: every file as listed, nothing else, and signed by a trusted key — or, only
    /// when the verifier accepts unsigned bundles, no signature at all.
    pub fn intact(&self, allow_unsigned: bool) -> bool {
        self.changed.is_empty()
            && self.missing.is_empty()
            && self.unlisted.is_empty()
            && self.special.is_empty()
            && match &self.signature {
                None => allow_unsigned,
                Some(r) => r.is_ok(),
            }
    }
}

/// Checks a run folder against its manifest. `trusted`: the lab keys (hex) a signature
/// must be made with; with none, a signature cannot make the bundle intact (anyone can make
/// a key and re-sign a re-generated manifest).
pub fn verify(dir: &Path, trusted: &[String]) -> Result<Findings, ManifestError> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(ManifestError::file(&path))?;
    let m: Manifest = serde_json::from_str(&text).map_err(ManifestError::Parse)?;
    let mut f = Findings::default();
    let (now, special) = entries_and_special(dir);
    f.special = special;
    for e in &m.files {
        match now.iter().find(|n| n.path == e.path) {
            None => f.missing.push(e.path.clone()),
            Some(n) if n.sha256 != e.sha256 => f.changed.push(e.path.clone()),
            Some(_) => {}
        }
    }
    for n in &now {
        if !m.files.iter().any(|e| e.path == n.path) {
            f.unlisted.push(n.path.clone());
        }
    }
    if let Ok(sig) = std::fs::read_to_string(dir.join(SIGNATURE)) {
        let parts: Vec<&str> = sig.split_whitespace().collect();
        f.signature = Some((|| {
            let [alg, pk, s] = parts[..] else {
                return Err("malformed signature file".to_string());
            };
            if alg != "ed25519" {
                return Err(format!("unknown algorithm {alg}"));
            }
            if trusted.is_empty() {
                return Err(format!(
                    "signed by key {pk}, but no trusted lab key was given (--pubkey or --known-keys): anyone can re-sign a re-generated manifest with a key of their own"
                ));
            }
            if !trusted.iter().any(|t| t.trim().eq_ignore_ascii_case(pk)) {
                return Err(format!("signed by key {pk}, which is not a trusted lab key"));
            }
            let vk = VerifyingKey::from_bytes(&parse_hex32(pk)?).map_err(|e| e.to_string())?;
            let sb = s.len() == 128;
            if !sb {
                return Err("malformed signature".into());
            }
            let mut bytes = [0u8; 64];
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| "malformed signature".to_string())?;
            }
            vk.verify(text.as_bytes(), &Signature::from_bytes(&bytes))
                .map_err(|_| "the signature does not match the manifest".to_string())?;
            Ok(pk.to_string())
        })());
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_byte_change_anywhere_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("scenarios/a")).expect("mkdir");
        std::fs::write(dir.path().join("junit.xml"), "<testsuites/>").expect("write");
        std::fs::write(dir.path().join("scenarios/a/console.log"), "login: ").expect("write");
        let key = SigningKey::from_bytes(&[7u8; 32]);
        write(dir.path(), "run-1", Some(&key)).expect("manifest");
        let pk = hex(key.verifying_key().as_bytes());
        assert!(
            verify(dir.path(), std::slice::from_ref(&pk))
                .expect("verify")
                .intact(false)
        );

        std::fs::write(dir.path().join("scenarios/a/console.log"), "login? ").expect("tamper");
        let f = verify(dir.path(), std::slice::from_ref(&pk)).expect("verify");
        assert_eq!(f.changed, vec!["scenarios/a/console.log".to_string()]);
        assert!(!f.intact(false));
    }

    #[test]
    fn a_changed_manifest_breaks_the_signature() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("junit.xml"), "x").expect("write");
        write(dir.path(), "run-1", Some(&SigningKey::from_bytes(&[9u8; 32]))).expect("manifest");
        let m = std::fs::read_to_string(dir.path().join(MANIFEST))
            .expect("read")
            .replace("run-1", "run-2");
        std::fs::write(dir.path().join(MANIFEST), m).expect("write");
        let pk = hex(SigningKey::from_bytes(&[9u8; 32]).verifying_key().as_bytes());
        assert!(matches!(
            verify(dir.path(), &[pk]).expect("verify").signature,
            Some(Err(_))
        ));
    }

    #[test]
    fn only_a_trusted_key_makes_a_bundle_intact_and_special_files_are_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("junit.xml"), "x").expect("write");
        // an attacker re-generates the manifest and signs it with a key of their own
        let attacker = SigningKey::from_bytes(&[3u8; 32]);
        write(dir.path(), "run-1", Some(&attacker)).expect("manifest");
        let lab = hex(SigningKey::from_bytes(&[9u8; 32]).verifying_key().as_bytes());
        assert!(
            !verify(dir.path(), &[]).expect("verify").intact(false),
            "no trusted key given"
        );
        assert!(
            !verify(dir.path(), std::slice::from_ref(&lab))
                .expect("verify")
                .intact(false)
        );
        // unsigned: intact only when the verifier accepts unsigned bundles
        std::fs::remove_file(dir.path().join(SIGNATURE)).expect("rm");
        assert!(!verify(dir.path(), &[]).expect("verify").intact(false));
        assert!(verify(dir.path(), &[]).expect("verify").intact(true));
        // a FIFO, a dangling link and a link loop are named, never read (no hang)
        let fifo = std::ffi::CString::new(dir.path().join("pipe").to_string_lossy().as_bytes()).expect("c");
        // SAFETY: mkfifo with a NUL-terminated path in our temp folder.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        std::os::unix::fs::symlink(dir.path().join("nowhere"), dir.path().join("dangling")).expect("link");
        std::os::unix::fs::symlink(dir.path().join("loop"), dir.path().join("loop")).expect("loop");
        let f = verify(dir.path(), &[]).expect("verify");
        assert_eq!(f.special.len(), 3, "{:?}", f.special);
        assert!(!f.intact(true));
    }
}
