//! The board's own MQTT broker (`--broker-port`): a hub's local broker for its sensors, on
//! the board's account (the same user name and password as its telnet and web logins, the
//! same lockout), over TLS like its other services. MQTT 3.1.1, the part a small broker
//! needs: CONNECT (CONNACK 0; 5 for a refused login), SUBSCRIBE (QoS 1 granted), PUBLISH
//! (QoS 0 and 1; delivered back on the connection's own matching subscriptions), PINGREQ,
//! DISCONNECT. Written by hand, like the board's telemetry client.
//!
//! A message on `config/update_server` (the owner's setting, as the web API's
//! `POST /api/config`) sets the board's update server: only a logged-in connection can send
//! one, unless the broker-anonymous flaw (a CONNECT without user name and password is taken).
//!
//! A connection belongs to the password it logged in with: once the owner changes the
//! password, the good board ends the connection at its next packet; the
//! sessions-survive-change flaw serves it on.

use crate::board::Flaw;
use crate::remote::{Accounts, Conn};

/// The largest packet the broker reads (a sensor's reading, not a firmware image).
const MAX_PACKET: usize = 16 * 1024;

/// Reads one packet: its first byte and its body; None: the connection is over (or sent
/// something no MQTT client would).
fn packet(r: &mut dyn Conn) -> Option<(u8, Vec<u8>)> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b).ok()?;
    let first = b[0];
    let (mut len, mut shift) = (0usize, 0);
    loop {
        r.read_exact(&mut b).ok()?;
        len |= ((b[0] & 0x7f) as usize) << shift;
        if b[0] & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 21 {
            return None;
        }
    }
    if len > MAX_PACKET {
        return None;
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some((first, body))
}

/// A length-prefixed string (or binary field) at `*at`.
fn field<'a>(body: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let n = u16::from_be_bytes([*body.get(*at)?, *body.get(*at + 1)?]) as usize;
    let s = body.get(*at + 2..*at + 2 + n)?;
    *at += 2 + n;
    Some(s)
}

fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    crate::mqtt::remaining_length(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

/// The user name and password of a CONNECT (MQTT 3.1.1 or 3.1).
fn credentials(body: &[u8]) -> Option<(String, String)> {
    let mut at = 0;
    let name = field(body, &mut at)?;
    if name != b"MQTT" && name != b"MQIsdp" {
        return None;
    }
    let flags = *body.get(at + 1)?;
    at += 4; // level, flags, keep-alive
    field(body, &mut at)?; // client id
    if flags & 0x04 != 0 {
        field(body, &mut at)?; // will topic
        field(body, &mut at)?; // will message
    }
    let user = (flags & 0x80 != 0).then(|| field(body, &mut at)).flatten()?;
    let password = (flags & 0x40 != 0).then(|| field(body, &mut at)).flatten()?;
    Some((
        String::from_utf8_lossy(user).into_owned(),
        String::from_utf8_lossy(password).into_owned(),
    ))
}

/// The connect flags of a CONNECT (user name 0x80, password 0x40).
fn connect_flags(body: &[u8]) -> Option<u8> {
    let mut at = 0;
    field(body, &mut at)?;
    body.get(at + 1).copied()
}

/// MQTT topic filter matching: `+` one level, `#` the rest.
fn matches(filter: &str, topic: &str) -> bool {
    let mut t = topic.split('/');
    for f in filter.split('/') {
        match (f, t.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (f, Some(l)) if f == l => {}
            _ => return false,
        }
    }
    t.next().is_none()
}

/// One client connection.
pub(crate) fn serve(w: &mut dyn Conn, a: &Accounts) {
    let Some((0x10, connect)) = packet(w) else { return };
    let anonymous = a.has(Flaw::BrokerAnonymous) && connect_flags(&connect).is_some_and(|f| f & 0xc0 == 0);
    if !anonymous && !credentials(&connect).is_some_and(|(u, p)| a.check(&u, &p)) {
        let _ = w.write_all(&[0x20, 2, 0, 5]);
        return;
    }
    if w.write_all(&[0x20, 2, 0, 0]).is_err() {
        return;
    }
    let opened_with = a.password_now();
    let mut filters: Vec<String> = Vec::new();
    while let Some((first, body)) = packet(w) {
        if a.session_over(&opened_with) {
            // the password this connection logged in with is no longer the owner's
            return;
        }
        let sent = match first >> 4 {
            8 => {
                // SUBSCRIBE: packet id, then (filter, QoS)...
                let Some(pkid) = body.get(..2) else { return };
                let mut at = 2;
                let mut codes = Vec::new();
                while at < body.len() {
                    let Some(f) = field(&body, &mut at) else { return };
                    filters.push(String::from_utf8_lossy(f).into_owned());
                    at += 1;
                    codes.push(1);
                }
                w.write_all(&frame(0x90, &[pkid, &codes[..]].concat()))
            }
            3 => {
                let qos = (first >> 1) & 3;
                let mut at = 0;
                let Some(topic) = field(&body, &mut at).map(|t| String::from_utf8_lossy(t).into_owned()) else {
                    return;
                };
                let pkid = if qos > 0 {
                    let Some(id) = body.get(at..at + 2) else { return };
                    at += 2;
                    Some([id[0], id[1]])
                } else {
                    None
                };
                let payload = &body[at.min(body.len())..];
                if topic == "config/update_server" {
                    let v = String::from_utf8_lossy(payload).trim().to_string();
                    if !v.is_empty() && v.len() <= 253 && !v.contains(char::is_whitespace) {
                        a.set_data("update_server", v);
                    }
                }
                let mut out = Vec::new();
                if let Some(id) = pkid {
                    out.extend_from_slice(&[0x40, 2, id[0], id[1]]);
                }
                if filters.iter().any(|f| matches(f, &topic)) {
                    let mut b = Vec::new();
                    b.extend_from_slice(&(topic.len() as u16).to_be_bytes());
                    b.extend_from_slice(topic.as_bytes());
                    b.extend_from_slice(payload);
                    out.extend_from_slice(&frame(0x30, &b));
                }
                w.write_all(&out)
            }
            12 => w.write_all(&[0xd0, 0]),
            _ => return, // DISCONNECT, or nothing this broker speaks
        };
        if sent.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_filters_match_as_mqtt_says() {
        assert!(matches("a/#", "a/b/c"));
        assert!(matches("a/+/c", "a/b/c"));
        assert!(matches("a/b", "a/b"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(!matches("a/+", "a/b/c"));
        assert!(matches("#", "x"));
    }

    #[test]
    fn a_connect_yields_its_credentials_and_nothing_else_does() {
        let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0xc2, 0, 60];
        for s in ["id", "admin", "pw"] {
            body.extend_from_slice(&(s.len() as u16).to_be_bytes());
            body.extend_from_slice(s.as_bytes());
        }
        assert_eq!(credentials(&body), Some(("admin".into(), "pw".into())));
        // no password flag: no credentials
        let mut anon = body.clone();
        anon[7] = 0x02;
        assert_eq!(credentials(&anon), None);
        assert_eq!(credentials(&body[..9]), None);
    }
}
