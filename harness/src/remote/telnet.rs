//! Telnet (RFC 854): option negotiation, then the login dialog with the prompts the
//! profile declares (by default the console's, as most devices run the same `login`).

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Outcome, Target};
use crate::console::{Console, Feed};

const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const SE: u8 = 240;
const ECHO: u8 = 1;
const SGA: u8 = 3;

/// What one dialog may read before it stops listening (a device that floods is not a login).
const MAX_READ: usize = 64 * 1024;

/// Splits telnet commands from the data; the answers to option requests go to `reply`.
/// We accept the server's ECHO and SUPPRESS-GO-AHEAD (as every telnet client does) and
/// refuse every other option.
#[derive(Debug, Default)]
pub struct Negotiator {
    state: State,
}

#[derive(Debug, Default, Clone, Copy)]
enum State {
    #[default]
    Data,
    Iac,
    Opt(u8),
    Sub,
    SubIac,
}

impl Negotiator {
    pub fn feed(&mut self, input: &[u8], data: &mut Vec<u8>, reply: &mut Vec<u8>) {
        for &b in input {
            self.state = match (self.state, b) {
                (State::Data, IAC) => State::Iac,
                (State::Data, b) => {
                    if b != 0 {
                        data.push(b);
                    }
                    State::Data
                }
                (State::Iac, IAC) => {
                    data.push(IAC);
                    State::Data
                }
                (State::Iac, WILL | WONT | DO | DONT) => State::Opt(b),
                (State::Iac, SB) => State::Sub,
                (State::Iac, _) => State::Data,
                (State::Opt(cmd), opt) => {
                    match cmd {
                        WILL => reply.extend([IAC, if matches!(opt, ECHO | SGA) { DO } else { DONT }, opt]),
                        DO => reply.extend([IAC, if opt == SGA { WILL } else { WONT }, opt]),
                        // WONT/DONT: already off on our side; answering could loop
                        _ => {}
                    }
                    State::Data
                }
                (State::Sub, IAC) => State::SubIac,
                (State::Sub, _) => State::Sub,
                (State::SubIac, SE) => State::Data,
                (State::SubIac, _) => State::Sub,
            };
        }
    }
}

/// A telnet session: bytes in, data and negotiation handled.
struct Session {
    conn: Box<dyn super::Stream>,
    neg: Negotiator,
    /// Data since the last thing we sent.
    seen: Vec<u8>,
    /// Everything, for the evidence.
    all: Vec<u8>,
    deadline: Instant,
}

enum Seen {
    Pattern(usize),
    Closed,
    Timeout,
}

impl Session {
    async fn send(&mut self, line: &str) -> Result<(), String> {
        self.seen.clear();
        // NVT end of line: CR LF
        let mut b = line.as_bytes().to_vec();
        b.extend_from_slice(b"\r\n");
        self.conn.write_all(&b).await.map_err(|e| format!("send: {e}"))?;
        self.conn.flush().await.map_err(|e| format!("send: {e}"))
    }

    /// Reads until one of `pats` matches what arrived since the last send.
    async fn expect(&mut self, pats: &[&regex::bytes::Regex]) -> Seen {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(i) = pats.iter().position(|p| p.is_match(&self.seen)) {
                return Seen::Pattern(i);
            }
            if self.all.len() > MAX_READ {
                return Seen::Timeout;
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            let n = match tokio::time::timeout(left, self.conn.read(&mut buf)).await {
                Err(_) => return Seen::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => return Seen::Closed,
                Ok(Ok(n)) => n,
            };
            let mut data = Vec::new();
            let mut reply = Vec::new();
            self.neg.feed(&buf[..n], &mut data, &mut reply);
            if !reply.is_empty() && self.conn.write_all(&reply).await.is_err() {
                return Seen::Closed;
            }
            self.seen.extend_from_slice(&data);
            self.all.extend_from_slice(&data);
        }
    }

    /// Everything the device said (bounded by [`MAX_READ`]), raw: the caller redacts
    /// before it shortens.
    fn transcript(&self) -> String {
        String::from_utf8_lossy(&self.all).into_owned()
    }
}

/// One login over telnet. The device's last words are the detail.
pub async fn attempt(t: &Target, user: &str, password: &str) -> (Outcome, String) {
    let Some(p) = t.service.prompts.as_ref() else {
        return (Outcome::Unanswered("no prompts declared".into()), String::new());
    };
    let conn = match super::connect(t).await {
        Ok(c) => c,
        Err(e) => return (Outcome::Unanswered(e.clone()), e),
    };
    let mut s = Session {
        conn,
        neg: Negotiator::default(),
        seen: Vec::new(),
        all: Vec::new(),
        deadline: Instant::now() + t.service.timeout,
    };
    let unanswered = |s: &Session, what: &str| (Outcome::Unanswered(what.to_string()), s.transcript());
    // the greeting: a login prompt, a password-only prompt, or (an open service) a shell
    match s.expect(&[&p.login, &p.password, &p.shell]).await {
        Seen::Pattern(0) => {
            if let Err(e) = s.send(user).await {
                return unanswered(&s, &e);
            }
            // a locked account may be refused before any password is asked for
            match s.expect(&[&p.password, &p.shell, &p.login_rejected]).await {
                Seen::Pattern(0) => {}
                Seen::Pattern(1) => return (Outcome::Accepted, s.transcript()),
                Seen::Pattern(_) => return (Outcome::Rejected, s.transcript()),
                Seen::Closed => return unanswered(&s, "closed after the user name"),
                Seen::Timeout => return unanswered(&s, "no password prompt"),
            }
        }
        Seen::Pattern(1) => {}
        Seen::Pattern(_) => return (Outcome::Accepted, s.transcript()),
        Seen::Closed => return unanswered(&s, "closed before a login prompt"),
        Seen::Timeout => return unanswered(&s, "no login prompt"),
    }
    if let Err(e) = s.send(password).await {
        return unanswered(&s, &e);
    }
    let mut pats = vec![&p.shell, &p.login_rejected, &p.login];
    if let Some(c) = &p.password_change {
        pats.insert(0, c);
    }
    let change = usize::from(p.password_change.is_some());
    let outcome = match s.expect(&pats).await {
        Seen::Pattern(0) if change == 1 => Outcome::PasswordChange,
        Seen::Pattern(i) if i == change => Outcome::Accepted,
        Seen::Pattern(_) => Outcome::Rejected,
        Seen::Closed => Outcome::Unanswered("closed after the password without a word".into()),
        Seen::Timeout => Outcome::Unanswered("no answer to the password".into()),
    };
    let _ = s.conn.shutdown().await;
    (outcome, s.transcript())
}

/// Bytes typed into a telnet session: a literal 0xFF is doubled (it would start a command).
fn escape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        out.push(b);
        if b == IAC {
            out.push(IAC);
        }
    }
    out
}

/// Logs in over telnet (the service's prompts) and hands the session on as a [`Console`]:
/// what the device prints is matched and kept exactly as on its serial console.
pub async fn shell_console(t: &Target, user: &str, password: &str) -> Result<Console, String> {
    let p = t
        .service
        .prompts
        .clone()
        .ok_or("the telnet service declares no prompts")?;
    let conn = super::connect(t).await?;
    let (mut rd, mut wr) = tokio::io::split(conn);
    let feed = Feed::new(std::time::Instant::now());
    feed.event(format!("telnet session to {}", t.describe()), Some(true));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let fed = feed.clone();
    tokio::spawn(async move {
        let mut neg = Negotiator::default();
        let mut buf = [0u8; 4096];
        loop {
            tokio::select! {
                r = rd.read(&mut buf) => match r {
                    Ok(0) | Err(_) => {
                        fed.event("the telnet session ended".into(), Some(false));
                        break;
                    }
                    Ok(n) => {
                        let (mut data, mut reply) = (Vec::new(), Vec::new());
                        neg.feed(&buf[..n], &mut data, &mut reply);
                        if !reply.is_empty() && wr.write_all(&reply).await.is_err() {
                            fed.event("the telnet session ended (write refused)".into(), Some(false));
                            break;
                        }
                        if !data.is_empty() {
                            fed.rx(&data);
                        }
                    }
                },
                w = rx.recv() => match w {
                    Some(bytes) => {
                        if wr.write_all(&escape(&bytes)).await.is_err() || wr.flush().await.is_err() {
                            fed.event("the telnet session ended (write refused)".into(), Some(false));
                            break;
                        }
                    }
                    None => {
                        let _ = wr.shutdown().await;
                        break;
                    }
                },
            }
        }
    });
    let c = Console::new(feed, std::sync::Arc::new(super::Pipe::new(tx)));
    let deadline = tokio::time::Instant::now() + t.service.timeout;
    let wait = |pats: Vec<regex::bytes::Regex>| {
        let c = c.clone();
        async move {
            let refs: Vec<&regex::bytes::Regex> = pats.iter().collect();
            match c.expect(&refs, deadline.into_std(), None).await {
                Ok(crate::console::Wait::Found(f)) => Ok(f.index),
                Ok(crate::console::Wait::Timeout) => Err(format!("no prompt within {:?}", t.service.timeout)),
                Err(e) => Err(e),
            }
        }
    };
    let line = |s: &str| format!("{s}\r\n").into_bytes();
    let sent = |e: std::io::Error| format!("send: {e}");
    // a login prompt, or (a password-only device) the password prompt at once
    if wait(vec![p.login.clone(), p.password.clone()]).await? == 0 {
        c.send(&line(user), format!("{user}<Enter>")).map_err(sent)?;
        wait(vec![p.password.clone()]).await?;
    }
    c.send(&line(password), "<password><Enter>".into()).map_err(sent)?;
    match wait(vec![p.shell.clone(), p.login_rejected.clone(), p.login.clone()]).await? {
        0 => Ok(c),
        _ => {
            c.close();
            Err("the login was refused".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_accepts_echo_and_sga_only_and_strips_commands() {
        let mut n = Negotiator::default();
        let (mut data, mut reply) = (Vec::new(), Vec::new());
        // WILL ECHO, DO TTYPE (24), SB TTYPE SEND IAC SE, "lo", IAC IAC, "gin: "
        n.feed(
            &[
                IAC, WILL, ECHO, IAC, DO, 24, IAC, SB, 24, 1, IAC, SE, b'l', b'o', IAC, IAC, b'g', b'i', b'n', b':',
                b' ',
            ],
            &mut data,
            &mut reply,
        );
        assert_eq!(data, b"lo\xffgin: ");
        assert_eq!(reply, vec![IAC, DO, ECHO, IAC, WONT, 24]);
        // a command split across reads
        let (mut data, mut reply) = (Vec::new(), Vec::new());
        n.feed(&[IAC], &mut data, &mut reply);
        n.feed(&[WILL], &mut data, &mut reply);
        n.feed(&[5, b'x'], &mut data, &mut reply);
        assert_eq!(data, b"x");
        assert_eq!(reply, vec![IAC, DONT, 5]);
    }
}
