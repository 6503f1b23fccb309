//! The bench's clock for the device (issue 25): every NTP request the device sends, to any
//! address, is answered by the bench (an SNTP server, RFC 4330/5905 server mode, stratum
//! 1, this machine's clock), so a device that sets its clock from the network has the right
//! time — TLS-03 (an expired certificate) means something only then — and its queries are
//! recorded. Only a datagram that is an NTP client request by its whole structure
//! ([`super::datagram::ntp`], mode 3) is answered: text dressed as NTP gets nothing.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Queries kept (then only counted).
const MAX_RECORDS: usize = 10_000;
/// Seconds from the NTP era's start (1900) to the Unix epoch.
const NTP_UNIX: u64 = 2_208_988_800;

/// One query, as evidence.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Query {
    pub from: String,
    pub version: u8,
    pub answered: bool,
}

#[derive(Debug, Default)]
struct Log {
    kept: Vec<Query>,
    more: u64,
}

/// The running server; stops when dropped.
#[derive(Debug)]
pub struct NtpServer {
    pub addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for NtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl NtpServer {
    /// Listens on `bench` (a free port: the device's requests are redirected to it).
    pub async fn start(bench: Ipv4Addr) -> Result<NtpServer, String> {
        let sock = tokio::net::UdpSocket::bind((bench, 0))
            .await
            .map_err(|e| format!("NTP: cannot listen on {bench}: {e}"))?;
        let addr = sock.local_addr().map_err(|e| e.to_string())?;
        let log = Arc::new(Mutex::new(Log::default()));
        let l = log.clone();
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            loop {
                let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let answer = answer(&buf[..n], SystemTime::now());
                if let Some(a) = &answer {
                    let _ = sock.send_to(a, peer).await;
                }
                let mut g = l.lock().unwrap_or_else(|e| e.into_inner());
                if g.kept.len() < MAX_RECORDS {
                    g.kept.push(Query {
                        from: peer.to_string(),
                        version: buf.first().map(|b| (b >> 3) & 7).unwrap_or(0),
                        answered: answer.is_some(),
                    });
                } else {
                    g.more += 1;
                }
            }
        });
        Ok(NtpServer { addr, log, task })
    }

    /// The queries so far (at most [`MAX_RECORDS`]) and how many more were only counted.
    pub fn queries(&self) -> (Vec<Query>, u64) {
        let g = self.log.lock().unwrap_or_else(|e| e.into_inner());
        (g.kept.clone(), g.more)
    }
}

/// A 64-bit NTP timestamp of `t`.
fn timestamp(t: SystemTime) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() + NTP_UNIX;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The server's answer to a client request (None for anything else).
pub fn answer(req: &[u8], now: SystemTime) -> Option<[u8; 48]> {
    if !super::datagram::ntp(req) || req[0] & 7 != 3 {
        return None;
    }
    let version = (req[0] >> 3) & 7;
    let mut a = [0u8; 48];
    a[0] = (version << 3) | 4; // no leap warning, the client's version, server mode
    a[1] = 1; // stratum 1: the bench's own clock is the reference
    a[2] = req[2]; // the client's poll interval
    a[3] = (-20i8) as u8; // precision about a microsecond
    // root delay 0, root dispersion ~1 ms (16.16 fixed point)
    a[8..12].copy_from_slice(&66u32.to_be_bytes());
    a[12..16].copy_from_slice(b"BNCH");
    let t = timestamp(now);
    // reference time: the clock was last set a second ago
    a[16..24].copy_from_slice(&(t - (1u64 << 32)).to_be_bytes());
    // originate: the client's transmit time, echoed so it can match and time the answer
    a[24..32].copy_from_slice(&req[40..48]);
    a[32..40].copy_from_slice(&t.to_be_bytes());
    a[40..48].copy_from_slice(&t.to_be_bytes());
    Some(a)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn request(first: u8) -> Vec<u8> {
        let mut r = vec![0u8; 48];
        r[0] = first;
        r[2] = 6;
        r[3] = (-20i8) as u8;
        r[40..48].copy_from_slice(&0x1122_3344_5566_7788u64.to_be_bytes());
        r
    }

    #[test]
    fn a_client_request_gets_a_server_answer_with_its_time_and_its_own_transmit_echoed() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let a = answer(&request(0x23), now).unwrap(); // v4, client
        assert!(super::super::datagram::ntp(&a), "the answer is valid NTP");
        assert_eq!((a[0] & 7, (a[0] >> 3) & 7, a[1]), (4, 4, 1));
        assert_eq!(&a[24..32], &0x1122_3344_5566_7788u64.to_be_bytes());
        let secs = u32::from_be_bytes([a[40], a[41], a[42], a[43]]) as u64;
        assert_eq!(secs, 1_800_000_000 + NTP_UNIX);
    }

    #[test]
    fn anything_but_a_client_request_gets_nothing() {
        let now = SystemTime::now();
        // a server's packet, a broadcast, a short one, text dressed as a v4 client
        assert!(answer(&request(0x24), now).is_none());
        assert!(answer(&request(0x25), now).is_none());
        assert!(answer(&request(0x23)[..40], now).is_none());
        let mut text = b"c=telemetry&owner=alice@example.com&temp=21.5&xy".to_vec();
        text.truncate(48);
        assert!(answer(&text, now).is_none());
    }
}
