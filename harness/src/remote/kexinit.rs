//! What an SSH server offers before any login: its identification line and its KEXINIT
//! (RFC 4253 §7.1), read in clear. COM-03's SSH part judges the algorithms against a list
//! of weak ones: broken (DES, 3DES, RC4, Blowfish, CAST, MD5, the 1024-bit group, no
//! cipher or MAC) or SHA-1 based key exchange and signatures, the ones OpenSSH itself
//! switched off by default between 7.0 and 8.8. What OpenSSH still offers by default
//! (umac-64, hmac-sha1) is not failed here.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// The server's offer.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Offer {
    pub ident: String,
    pub kex: Vec<String>,
    pub host_key: Vec<String>,
    pub ciphers: Vec<String>,
    pub macs: Vec<String>,
}

/// Weak algorithms by kind; a name matches exactly, or as a prefix when it ends in `*`.
pub const WEAK: &[(&str, &[&str])] = &[
    (
        "key exchange",
        &[
            "diffie-hellman-group1-sha1",
            "diffie-hellman-group14-sha1",
            "diffie-hellman-group-exchange-sha1",
            "rsa1024-sha1",
            "gss-group1-sha1-*",
            "gss-gex-sha1-*",
        ],
    ),
    (
        "host key",
        &[
            "ssh-dss",
            "ssh-rsa",
            "ssh-dss-cert-v01@openssh.com",
            "ssh-rsa-cert-v01@openssh.com",
        ],
    ),
    (
        "cipher",
        &[
            "none",
            "3des-cbc",
            "des-cbc",
            "arcfour",
            "arcfour128",
            "arcfour256",
            "blowfish-cbc",
            "cast128-cbc",
            "rijndael-cbc@lysator.liu.se",
        ],
    ),
    ("MAC", &["none", "hmac-md5*", "hmac-sha1-96*", "hmac-ripemd160*"]),
];

fn weak_in(kind: &str, offered: &[String]) -> Vec<String> {
    let list = WEAK.iter().find(|(k, _)| *k == kind).map(|(_, l)| *l).unwrap_or(&[]);
    offered
        .iter()
        .filter(|a| {
            list.iter().any(|w| match w.strip_suffix('*') {
                Some(prefix) => a.starts_with(prefix),
                None => a.as_str() == *w,
            })
        })
        .cloned()
        .collect()
}

impl Offer {
    /// `(kind, weak algorithms offered)` for each kind with any.
    pub fn weak(&self) -> Vec<(&'static str, Vec<String>)> {
        [
            ("key exchange", &self.kex),
            ("host key", &self.host_key),
            ("cipher", &self.ciphers),
            ("MAC", &self.macs),
        ]
        .into_iter()
        .map(|(k, v)| (k, weak_in(k, v)))
        .filter(|(_, w)| !w.is_empty())
        .collect()
    }
}

/// Reads a name-list (uint32 length, comma-separated ASCII).
fn name_list(p: &[u8], at: &mut usize) -> Result<Vec<String>, String> {
    let len = p
        .get(*at..*at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or("KEXINIT cut short")?;
    *at += 4;
    let s = p.get(*at..*at + len).ok_or("KEXINIT cut short")?;
    *at += len;
    let s = String::from_utf8_lossy(s);
    Ok(s.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| super::target::printable(x, 80))
        .collect())
}

/// Parses a KEXINIT payload (message 20).
pub fn parse_kexinit(payload: &[u8]) -> Result<Offer, String> {
    if payload.first() != Some(&20) {
        return Err(format!(
            "the first packet is message {:?}, not KEXINIT",
            payload.first()
        ));
    }
    let mut at = 17; // type + 16-byte cookie
    let kex = name_list(payload, &mut at)?;
    let host_key = name_list(payload, &mut at)?;
    let enc_cs = name_list(payload, &mut at)?;
    let enc_sc = name_list(payload, &mut at)?;
    let mac_cs = name_list(payload, &mut at)?;
    let mac_sc = name_list(payload, &mut at)?;
    let union = |a: Vec<String>, b: Vec<String>| {
        let mut v = a;
        for x in b {
            if !v.contains(&x) {
                v.push(x);
            }
        }
        v
    };
    Ok(Offer {
        ident: String::new(),
        kex,
        host_key,
        ciphers: union(enc_cs, enc_sc),
        macs: union(mac_cs, mac_sc),
    })
}

/// Connects, exchanges identification lines and reads the server's KEXINIT.
pub async fn offer(addr: std::net::SocketAddr, timeout: Duration) -> Result<Offer, String> {
    let work = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("TCP connect: {e}"))?;
        let mut r = BufReader::new(tcp);
        r.get_mut()
            .write_all(b"SSH-2.0-certbench\r\n")
            .await
            .map_err(|e| format!("send: {e}"))?;
        // the server may send other lines before its identification (RFC 4253 §4.2)
        let mut ident = String::new();
        for _ in 0..32 {
            let mut line = Vec::new();
            let n = (&mut r)
                .take(1024)
                .read_until(b'\n', &mut line)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("closed before identifying itself".to_string());
            }
            let l = String::from_utf8_lossy(&line).trim_end().to_string();
            if l.starts_with("SSH-") {
                ident = super::target::printable(&l, 255);
                break;
            }
        }
        if ident.is_empty() {
            return Err("no SSH identification line".into());
        }
        let mut len = [0u8; 4];
        r.read_exact(&mut len).await.map_err(|e| format!("read: {e}"))?;
        let len = u32::from_be_bytes(len) as usize;
        if !(5..=35_000).contains(&len) {
            return Err(format!("a first packet of {len} bytes"));
        }
        let mut pkt = vec![0u8; len];
        r.read_exact(&mut pkt).await.map_err(|e| format!("read: {e}"))?;
        let pad = usize::from(pkt[0]);
        let payload = pkt.get(1..len.saturating_sub(pad)).ok_or("bad padding")?;
        let mut o = parse_kexinit(payload)?;
        o.ident = ident;
        Ok(o)
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("no KEXINIT within {timeout:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &[&str]) -> Vec<u8> {
        let s = v.join(",");
        let mut out = (s.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(s.as_bytes());
        out
    }

    #[test]
    fn weak_algorithms_are_named_and_strong_ones_pass() {
        let mut p = vec![20u8];
        p.extend([0u8; 16]);
        p.extend(list(&["curve25519-sha256", "diffie-hellman-group1-sha1"]));
        p.extend(list(&["ssh-ed25519"]));
        p.extend(list(&["aes128-ctr", "3des-cbc"]));
        p.extend(list(&["aes128-ctr"]));
        p.extend(list(&["hmac-sha2-256", "hmac-md5-96-etm@openssh.com"]));
        p.extend(list(&["hmac-sha2-256"]));
        let o = parse_kexinit(&p).expect("parses");
        let weak = o.weak();
        assert_eq!(weak.len(), 3, "{weak:?}");
        assert_eq!(
            weak[0],
            ("key exchange", vec!["diffie-hellman-group1-sha1".to_string()])
        );
        assert_eq!(weak[1], ("cipher", vec!["3des-cbc".to_string()]));
        assert_eq!(weak[2], ("MAC", vec!["hmac-md5-96-etm@openssh.com".to_string()]));
        assert!(parse_kexinit(&p[..30]).is_err(), "cut short is an error, not a pass");
    }
}
