//! Who is talking to the bench, and how much of it each may hold.
//!
//! The bench network is shared: besides the device under test, a lab PC, a second board or
//! an attacker may connect. When the device's address is known (profile `network.address`
//! or the lab's `bench.device_address`), only its connections count as the device's: other
//! peers are recorded as such and can neither satisfy a positive control nor cause a FAIL.
//! Every listener admits a bounded number of connections: the device has its own share,
//! which other peers cannot take, and each other peer is capped on its own.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::model::{Attribution, Origin};

/// Connections the device may hold at once on one listener.
pub const DEVICE_MAX: usize = 64;
/// Connections all other peers together may hold at once on one listener.
pub const OTHERS_MAX: usize = 64;
/// Connections one other peer may hold at once on one listener.
pub const PER_PEER_MAX: usize = 16;
/// Records kept per log (sessions, requests, handshakes); later ones are only counted.
pub const RECORDS_MAX: usize = 20_000;
/// Of those, records of other peers' connections.
pub const OTHER_RECORDS_MAX: usize = 2_000;

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The device already holds its share of connections on this listener.
    DeviceShareFull,
    /// No device address is declared and all peers together hold the device's share.
    SharedFull,
    /// Other peers together hold their share.
    OthersFull,
    /// This peer holds its share.
    PeerFull,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::DeviceShareFull => write!(f, "refused: the device already holds {DEVICE_MAX} connections"),
            Refusal::SharedFull => write!(
                f,
                "refused: {DEVICE_MAX} connections already held (the device's address is not declared, so every peer shares the device's share)"
            ),
            Refusal::OthersFull => write!(f, "refused: other peers already hold {OTHERS_MAX} connections"),
            Refusal::PeerFull => write!(f, "refused: this peer already holds {PER_PEER_MAX} connections"),
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    device: usize,
    others: usize,
    per_peer: HashMap<IpAddr, usize>,
}

/// Admission for one listener.
#[derive(Debug, Clone)]
pub struct Admission {
    pub attribution: Attribution,
    counts: Arc<Mutex<Counts>>,
}

/// Held for as long as an admitted connection lives.
#[derive(Debug)]
pub struct Admitted {
    counts: Arc<Mutex<Counts>>,
    peer: IpAddr,
    device: bool,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if self.device {
            c.device = c.device.saturating_sub(1);
        } else {
            c.others = c.others.saturating_sub(1);
            if let Some(n) = c.per_peer.get_mut(&self.peer) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    c.per_peer.remove(&self.peer);
                }
            }
        }
    }
}

impl Admission {
    pub fn new(attribution: Attribution) -> Self {
        Self {
            attribution,
            counts: Arc::default(),
        }
    }

    /// Admits a connection from `peer`, or says why not.
    pub fn admit(&self, peer: IpAddr) -> Result<Admitted, Refusal> {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        // without a declared address every peer shares the device's share
        let device = self.attribution.origin(peer).counts();
        if device {
            if c.device >= DEVICE_MAX {
                return Err(match self.attribution.device {
                    Some(_) => Refusal::DeviceShareFull,
                    None => Refusal::SharedFull,
                });
            }
            c.device += 1;
        } else {
            if c.others >= OTHERS_MAX {
                return Err(Refusal::OthersFull);
            }
            let n = c.per_peer.entry(peer).or_default();
            if *n >= PER_PEER_MAX {
                return Err(Refusal::PeerFull);
            }
            *n += 1;
            c.others += 1;
        }
        Ok(Admitted {
            counts: self.counts.clone(),
            peer,
            device,
        })
    }
}

/// Whether a log has room for one more record of this origin, counting what it drops.
#[derive(Debug, Default)]
pub struct RecordBudget {
    total: usize,
    others: usize,
    /// Records not kept: (device's, other peers').
    pub dropped: (u64, u64),
}

impl RecordBudget {
    pub fn take(&mut self, origin: Origin) -> bool {
        let other = !origin.counts();
        if self.total >= RECORDS_MAX || (other && self.others >= OTHER_RECORDS_MAX) {
            if other {
                self.dropped.1 += 1;
            } else {
                self.dropped.0 += 1;
            }
            return false;
        }
        self.total += 1;
        if other {
            self.others += 1;
        }
        true
    }
}

/// Cuts a peer-controlled string to at most `max` bytes (on a character boundary), saying so,
/// with a digest of the whole so that names differing only past the cut stay distinct.
pub fn bounded(s: &str, max: usize) -> String {
    use sha2::Digest;
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let d = sha2::Sha256::digest(s.as_bytes());
    let hex: String = d[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}… ({} bytes, sha256 {hex}…)", &s[..end], s.len())
}

/// The next connection of a listener. A failed accept (EMFILE, ENFILE, ENOBUFS...) is
/// followed by a growing pause (10 ms doubling to 1 s), so a full descriptor table does not
/// turn the accept loop into a busy loop.
pub async fn accept(l: &tokio::net::TcpListener) -> (tokio::net::TcpStream, std::net::SocketAddr) {
    let mut failures = 0u32;
    loop {
        match l.accept().await {
            Ok(c) => return c,
            Err(_) => {
                failures = failures.saturating_add(1);
                let ms = (10u64 << failures.min(6)).min(1000);
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn other_peers_cannot_take_the_devices_share() {
        let g = Admission::new(Attribution {
            device: Some(ip("127.0.0.2")),
        });
        let mut held = Vec::new();
        // one peer is capped on its own; several together at OTHERS_MAX
        let mut refused = None;
        for i in 0..(OTHERS_MAX + 10) {
            let peer = ip(&format!("127.0.1.{}", i / PER_PEER_MAX + 1));
            match g.admit(peer) {
                Ok(a) => held.push(a),
                Err(r) => {
                    refused = Some(r);
                    break;
                }
            }
        }
        assert_eq!(held.len(), OTHERS_MAX);
        assert_eq!(refused, Some(Refusal::OthersFull));
        let one = ip("127.0.9.9");
        let mine: Vec<_> = (0..PER_PEER_MAX).map(|_| g.admit(one)).collect();
        assert!(mine.iter().all(|a| a.is_err()), "others are full");
        // the device still gets in
        let dev: Vec<_> = (0..DEVICE_MAX)
            .map(|_| g.admit(ip("127.0.0.2")).expect("device"))
            .collect();
        assert_eq!(g.admit(ip("127.0.0.2")).err(), Some(Refusal::DeviceShareFull));
        drop(dev);
        assert!(g.admit(ip("127.0.0.2")).is_ok(), "released on drop");
        drop(held);
        let per: Vec<_> = (0..PER_PEER_MAX).map(|_| g.admit(one).expect("free again")).collect();
        assert_eq!(g.admit(one).err(), Some(Refusal::PeerFull));
        drop(per);
    }

    #[test]
    fn origins() {
        let a = Attribution {
            device: Some(ip("192.0.2.7")),
        };
        assert_eq!(a.origin(ip("192.0.2.7")), Origin::Device);
        assert_eq!(a.origin(ip("::ffff:192.0.2.7")), Origin::Device);
        assert_eq!(a.origin(ip("192.0.2.8")), Origin::OtherPeer);
        assert_eq!(Attribution::default().origin(ip("192.0.2.8")), Origin::Unattributed);
        assert!(Origin::Unattributed.counts() && !Origin::OtherPeer.counts());
    }

    #[test]
    fn budgets_and_bounds() {
        let mut b = RecordBudget::default();
        for _ in 0..OTHER_RECORDS_MAX + 5 {
            b.take(Origin::OtherPeer);
        }
        assert_eq!(b.dropped, (0, 5));
        assert!(b.take(Origin::Device), "the device's records are not crowded out");
        assert!(bounded("abcdef", 3).starts_with("abc… (6 bytes, sha256 "));
        assert!(bounded("ééé", 3).starts_with("é… (6 bytes"));
        assert_ne!(bounded("abcdef", 3), bounded("abcdeg", 3), "distinct past the cut");
        assert_eq!(bounded("ab", 3), "ab");
    }
}
