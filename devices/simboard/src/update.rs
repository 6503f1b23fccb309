//! The board's update agent and its image format.
//!
//! Image ("sbimg", version 1): a 64-byte header — magic `SBIMG001`, version as three
//! little-endian u16, two reserved bytes, the model (16 bytes, NUL-padded), the payload
//! length (u32 LE), 28 reserved bytes — then the payload, then an Ed25519 signature (64
//! bytes) over header and payload. The agent checks the update host's manifest
//! periodically, downloads newer images, verifies them and installs into the inactive slot.

use std::io::{Read, Write};
use std::time::Duration;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

pub const MAGIC: &[u8; 8] = b"SBIMG001";
pub const HEADER: usize = 64;
pub const SIG: usize = 64;
pub const MODEL: &str = "SB-1";

pub type Version = (u16, u16, u16);

pub fn parse_version(s: &str) -> Option<Version> {
    let mut it = s.trim().split('.').map(|p| p.parse::<u16>().ok());
    let v = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some(v)
}

pub fn show(v: Version) -> String {
    format!("{}.{}.{}", v.0, v.1, v.2)
}

/// The components the firmware links, as each prints its version: the image carries these
/// strings at the start of its payload, the `components` command prints them.
pub const COMPONENTS: [&str; 3] = [
    "BusyBox v1.36.1 (2024-05-21 00:00:00 UTC) multi-call binary.",
    "OpenSSL 3.0.15 3 Sep 2024",
    "lighttpd/1.4.76 (ssl) - a light and fast webserver",
];

/// Builds a signed image with a deterministic payload of `payload_len` bytes, which begins
/// with the firmware's component version strings (NUL-separated) where it is long enough.
pub fn build(key: &SigningKey, version: Version, model: &str, payload_len: usize) -> Vec<u8> {
    let mut img = Vec::with_capacity(HEADER + payload_len + SIG);
    img.extend_from_slice(MAGIC);
    for part in [version.0, version.1, version.2] {
        img.extend_from_slice(&part.to_le_bytes());
    }
    img.extend_from_slice(&[0, 0]);
    let mut m = [0u8; 16];
    let mb = model.as_bytes();
    m[..mb.len().min(16)].copy_from_slice(&mb[..mb.len().min(16)]);
    img.extend_from_slice(&m);
    img.extend_from_slice(&(payload_len as u32).to_le_bytes());
    img.extend_from_slice(&[0u8; 28]);
    let start = img.len();
    img.extend((0..payload_len).map(|i| (i as u32).wrapping_mul(2_246_822_519).rotate_left(13) as u8));
    let mut banner = Vec::new();
    for c in COMPONENTS {
        banner.push(0u8);
        banner.extend_from_slice(c.as_bytes());
    }
    banner.push(0);
    if banner.len() <= payload_len {
        img[start..start + banner.len()].copy_from_slice(&banner);
    }
    let sig = key.sign(&img);
    img.extend_from_slice(&sig.to_bytes());
    img
}

/// What the agent's checks are told to skip (the board's flaws).
#[derive(Debug, Clone, Copy, Default)]
pub struct Lax {
    pub no_signature: bool,
    pub no_length: bool,
    pub downgrade: bool,
    pub any_model: bool,
}

/// A verified image: its version.
pub fn verify(img: &[u8], key: &VerifyingKey, current: Version, lax: Lax) -> Result<Version, String> {
    if img.len() < HEADER {
        return Err(format!("image is {} bytes, shorter than its header", img.len()));
    }
    if &img[..8] != MAGIC {
        return Err("bad magic".into());
    }
    let le = |i: usize| u16::from_le_bytes([img[i], img[i + 1]]);
    let version = (le(8), le(10), le(12));
    let model = String::from_utf8_lossy(&img[16..32]).trim_end_matches('\0').to_string();
    let payload_len = u32::from_le_bytes([img[32], img[33], img[34], img[35]]) as usize;
    let expected = HEADER + payload_len + SIG;
    if img.len() != expected && !lax.no_length {
        return Err(format!("image is {} bytes, its header says {expected}", img.len()));
    }
    if img.len() < expected {
        return Err(format!("image is truncated ({} of {expected} bytes)", img.len()));
    }
    if !lax.no_signature {
        let sig = Signature::from_slice(&img[HEADER + payload_len..expected]).map_err(|e| e.to_string())?;
        key.verify(&img[..HEADER + payload_len], &sig)
            .map_err(|_| "bad signature".to_string())?;
    }
    if model != MODEL && !lax.any_model {
        return Err(format!("image is for model {model:?}, this is {MODEL}"));
    }
    if version <= current && !lax.downgrade {
        return Err(format!(
            "image version {} is not newer than {} (rollback protection)",
            show(version),
            show(current)
        ));
    }
    Ok(version)
}

/// `http(s)://host:port/path` -> (https, host:port, path).
fn split_url(url: &str) -> Result<(bool, String, String), String> {
    let (https, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(r), _) => (false, r),
        (_, Some(r)) => (true, r),
        _ => return Err(format!("only http:// and https:// update URLs are supported: {url}")),
    };
    let (hp, path) = rest.split_once('/').unwrap_or((rest, ""));
    Ok((https, hp.to_string(), format!("/{path}")))
}

/// How the agent checks the update server over HTTPS: the CA it was provisioned with and
/// the host name the server's certificate must carry.
#[derive(Debug, Clone)]
pub struct UpdateTls {
    pub config: std::sync::Arc<rustls::ClientConfig>,
    pub name: String,
}

impl UpdateTls {
    pub fn new(ca: &std::path::Path, name: &str) -> Result<Self, String> {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("update CA {}: {e}", ca.display()))? {
            roots.add(cert.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        }
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            config: std::sync::Arc::new(config),
            name: name.to_string(),
        })
    }
}

/// An HTTP/1.1 GET (over TLS for https:// URLs, verified against `tls`), bounded in size
/// and time.
pub fn get(url: &str, limit: usize, tls: Option<&UpdateTls>) -> Result<Vec<u8>, String> {
    let (https, hp, path) = split_url(url)?;
    let s = crate::net::connect(&hp)?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut stream: Box<dyn ReadWrite> = if https {
        let t = tls.ok_or_else(|| format!("{url}: no CA to check the update server with (--update-ca)"))?;
        let name = rustls::pki_types::ServerName::try_from(t.name.clone()).map_err(|e| format!("host name: {e}"))?;
        let conn = rustls::ClientConnection::new(t.config.clone(), name).map_err(|e| e.to_string())?;
        Box::new(rustls::StreamOwned::new(conn, s))
    } else {
        Box::new(s)
    };
    let host = match (https, tls) {
        (true, Some(t)) => t.name.clone(),
        _ => hp.clone(),
    };
    // one write: `write!` on an unbuffered stream sends each piece in a write of its own,
    // and a server that reads the request once may answer a fragment and close
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: simboard-updater/1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if raw.len() > limit + 8192 {
                    break;
                }
            }
            // a server that closes without TLS close_notify has still sent its answer
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(e) => return Err(format!("read {url}: {e}")),
        }
    }
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no HTTP header")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!("GET {url}: {}", head.lines().next().unwrap_or("")));
    }
    let mut body = raw[split + 4..].to_vec();
    // chunked transfer encoding, as hyper sends bodies of unknown length
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").ok_or("bad chunk")?;
            let n =
                usize::from_str_radix(String::from_utf8_lossy(&rest[..nl]).trim(), 16).map_err(|_| "bad chunk size")?;
            if n == 0 {
                break;
            }
            let start = nl + 2;
            out.extend_from_slice(rest.get(start..start + n).ok_or("short chunk")?);
            rest = rest.get(start + n + 2..).ok_or("short chunk")?;
        }
        body = out;
    }
    Ok(body)
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// The manifest: `{"version": "2.0.0", "url": "/fw.img"}` (only these two keys are read).
pub fn manifest(text: &str) -> Option<(Version, String)> {
    let field = |k: &str| {
        let i = text.find(&format!("\"{k}\""))?;
        let rest = &text[i + k.len() + 2..];
        let start = rest.find('"')? + 1;
        let end = start + rest[start..].find('"')?;
        Some(rest[start..end].to_string())
    };
    Some((parse_version(&field("version")?)?, field("url")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[42u8; 32])
    }

    #[test]
    fn a_valid_newer_image_verifies_and_every_defect_is_refused() {
        let k = key();
        let vk = k.verifying_key();
        let cur = (1, 0, 0);
        let good = build(&k, (2, 0, 0), MODEL, 4000);
        assert_eq!(verify(&good, &vk, cur, Lax::default()), Ok((2, 0, 0)));
        let mut flipped = good.clone();
        flipped[2000] ^= 1;
        assert!(verify(&flipped, &vk, cur, Lax::default()).is_err());
        assert!(verify(&good[..3000], &vk, cur, Lax::default()).is_err());
        let mut big = good.clone();
        big.extend_from_slice(&[9; 100]);
        assert!(verify(&big, &vk, cur, Lax::default()).is_err());
        assert!(
            verify(
                &big,
                &vk,
                cur,
                Lax {
                    no_length: true,
                    ..Lax::default()
                }
            )
            .is_ok(),
            "the no-length-check flaw"
        );
        assert!(
            verify(&build(&k, (0, 9, 0), MODEL, 10), &vk, cur, Lax::default())
                .expect_err("refused")
                .contains("rollback")
        );
        assert!(
            verify(&build(&k, (2, 0, 0), "SB-2", 10), &vk, cur, Lax::default())
                .expect_err("refused")
                .contains("model")
        );
        let other = SigningKey::from_bytes(&[7u8; 32]);
        assert!(
            verify(&build(&other, (2, 0, 0), MODEL, 10), &vk, cur, Lax::default())
                .expect_err("refused")
                .contains("signature")
        );
        assert!(
            verify(
                &build(&other, (2, 0, 0), MODEL, 10),
                &vk,
                cur,
                Lax {
                    no_signature: true,
                    ..Lax::default()
                }
            )
            .is_ok()
        );
    }

    #[test]
    fn manifest_and_versions() {
        assert_eq!(
            manifest(r#"{"version": "2.1.0", "url": "/images/fw.img"}"#),
            Some(((2, 1, 0), "/images/fw.img".into()))
        );
        assert_eq!(parse_version("1.2"), None);
        assert!((1, 10, 0) > (1, 9, 9));
    }
}

/// How the agent finds and trusts updates.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The manifest URL (http://host:port/path).
    pub url: String,
    pub pubkey: VerifyingKey,
    pub interval: Duration,
    /// How long writing an image takes (the window a power cut can hit).
    pub install: Duration,
    /// What the agent says on the console (all of them correct behaviour).
    pub messages: Messages,
    /// For an https:// URL: the CA and name the server is checked against.
    pub tls: Option<UpdateTls>,
}

/// How an update client reports, on the console, what it does with an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Messages {
    /// "rejected ..." or "installing ..." then "installed ...".
    Normal,
    /// "installing ..." as soon as the download is done, before it verifies (as clients
    /// that print "verifying and installing" do); then "rejected" or "installed".
    InstallingFirst,
    /// Says nothing about a refused image (it logs elsewhere).
    SilentRefusal,
}

impl Messages {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "normal" => Some(Self::Normal),
            "installing-first" => Some(Self::InstallingFirst),
            "silent-refusal" => Some(Self::SilentRefusal),
            _ => None,
        }
    }
}

/// Checks for updates every interval for as long as the board is powered; installs a
/// verified newer image into the inactive slot, then reboots into it.
pub fn agent(
    opts: AgentOptions,
    flaws: Vec<crate::board::Flaw>,
    state_path: std::path::PathBuf,
    console: Option<std::fs::File>,
) {
    use crate::board::{Flaw, State};
    let say = |msg: &str| {
        if let Some(mut c) = console.as_ref().and_then(|c| c.try_clone().ok()) {
            let _ = c.write_all(format!("\r\n{msg}\r\n").as_bytes());
        }
    };
    if flaws.contains(&Flaw::AutoUpdateOff) {
        return; // automatic updates are off by default
    }
    let lax = Lax {
        no_signature: flaws.contains(&Flaw::NoSignatureCheck),
        no_length: flaws.contains(&Flaw::NoLengthCheck),
        downgrade: flaws.contains(&Flaw::DowngradeAllowed),
        any_model: flaws.contains(&Flaw::WrongModelAccepted),
    };
    let base = opts.url.split('/').take(3).collect::<Vec<_>>().join("/");
    loop {
        let mut state = State::load(&state_path);
        let current = parse_version(&state.version).unwrap_or((0, 0, 0));
        let offered = get(&opts.url, 64 << 10, opts.tls.as_ref())
            .ok()
            .and_then(|m| manifest(&String::from_utf8_lossy(&m)));
        if let Some((version, path)) = offered
            && version != current
        {
            say(&format!("update: {} offered, downloading", show(version)));
            let fetched = get(&format!("{base}{path}"), 64 << 20, opts.tls.as_ref());
            if fetched.as_ref().is_ok_and(|img| img.is_empty()) && flaws.contains(&Flaw::EmptyImageAccepted) {
                state.version = "unknown".into();
                state.save(&state_path);
                say("update: installed an empty image, rebooting");
                reboot();
            }
            if fetched.is_ok() && opts.messages == Messages::InstallingFirst {
                say(&format!("update: verifying and installing {}", show(version)));
            }
            match fetched.and_then(|img| verify(&img, &opts.pubkey, current, lax).map(|v| (v, img))) {
                Err(_) if opts.messages == Messages::SilentRefusal => {}
                Err(why) => say(&format!("update: rejected {}: {why}", show(version))),
                Ok((v, img)) => {
                    let bricking = flaws.contains(&Flaw::BricksOnPowerLoss);
                    let slot = if bricking {
                        state.slot
                    } else if state.slot == 'A' {
                        'B'
                    } else {
                        'A'
                    };
                    if bricking {
                        state.installing = true;
                        state.save(&state_path);
                    }
                    say(&format!("update: installing {} into slot {slot}", show(v)));
                    let file = state_path.with_extension(format!("slot{slot}"));
                    let steps = 10;
                    let mut written = Vec::new();
                    for chunk in img.chunks(img.len().div_ceil(steps).max(1)) {
                        written.extend_from_slice(chunk);
                        let _ = std::fs::write(&file, &written);
                        std::thread::sleep(opts.install / steps as u32);
                    }
                    state.version = show(v);
                    state.slot = slot;
                    state.installing = false;
                    state.save(&state_path); // atomic: old or new, never half
                    say(&format!("update: installed {} in slot {slot}, rebooting", show(v)));
                    reboot();
                }
            }
        }
        std::thread::sleep(opts.interval);
    }
}

/// Reboots by re-executing the board (same arguments, same pid, fresh serial line).
fn reboot() {
    use std::os::unix::process::CommandExt;
    // the serial line goes away first: its PTY number is freed and may be reused by another
    // program, which a reader following the old link would reach
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--link")
        && let Some(link) = args.get(i + 1)
    {
        let _ = std::fs::remove_file(link);
    }
    if let Ok(exe) = std::env::current_exe() {
        let err = std::process::Command::new(exe).args(std::env::args().skip(1)).exec();
        eprintln!("reboot failed: {err}");
    }
    std::process::exit(1);
}

/// 64 hex digits -> 32 bytes.
fn hex32(t: &str) -> Result<[u8; 32], String> {
    let t = t.trim();
    if t.len() != 64 {
        return Err("expected 64 hex digits".into());
    }
    let mut b = [0u8; 32];
    for (i, x) in b.iter_mut().enumerate() {
        *x = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|_| "not hex".to_string())?;
    }
    Ok(b)
}

/// The maker's signing key: a file holding the 32-byte Ed25519 seed as hex.
pub fn read_key(path: &std::path::Path) -> Result<SigningKey, String> {
    let t = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(SigningKey::from_bytes(
        &hex32(&t).map_err(|e| format!("{}: {e}", path.display()))?,
    ))
}

/// The public key the board was provisioned with.
pub fn parse_pubkey(hex: &str) -> Result<VerifyingKey, String> {
    VerifyingKey::from_bytes(&hex32(hex).map_err(|e| format!("update public key: {e}"))?).map_err(|e| e.to_string())
}
