//! Telnet (RFC 854): option negotiation, then the login dialog with the prompts the
//! profile declares (by default the console's, as most devices run the same `login`).

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::target::{LoginAnswer, Target};
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
    conn: Box<dyn super::target::Stream>,
    neg: Negotiator,
    /// What a person would see: ANSI sequences and `\r` removed, as on the console, so
    /// the console's prompts (`^NAME login: `) match a greeting of `\r\n\rNAME login: `.
    visible: crate::console::ansi::AnsiStripper,
    /// Data since the last thing we sent, as seen (see `visible`).
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
        self.write_within(&b).await
    }

    /// Writes within the attempt's deadline: a device that stops reading (its receive
    /// window full of our answers to its option flood) cannot hold the attempt.
    async fn write_within(&mut self, b: &[u8]) -> Result<(), String> {
        let deadline = tokio::time::Instant::from_std(self.deadline);
        tokio::time::timeout_at(deadline, async {
            self.conn.write_all(b).await?;
            self.conn.flush().await
        })
        .await
        .map_err(|_| "the device stopped taking what was sent (write deadline)".to_string())?
        .map_err(|e| format!("send: {e}"))
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
            if !reply.is_empty() && self.write_within(&reply).await.is_err() {
                return Seen::Closed;
            }
            self.visible.push(&data, &mut self.seen);
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
pub async fn attempt(t: &Target, user: &str, password: &str) -> (LoginAnswer, String) {
    let Some(p) = t.service.prompts.as_ref() else {
        return (LoginAnswer::Unanswered("no prompts declared".into()), String::new());
    };
    let conn = match super::target::connect(t).await {
        Ok(c) => c,
        Err(e) => return (LoginAnswer::Unanswered(e.clone()), e),
    };
    let mut s = Session {
        conn,
        neg: Negotiator::default(),
        visible: Default::default(),
        seen: Vec::new(),
        all: Vec::new(),
        deadline: Instant::now() + t.service.timeout,
    };
    let unanswered = |s: &Session, what: &str| (LoginAnswer::Unanswered(what.to_string()), s.transcript());
    // the greeting: a login prompt, a password-only prompt, or (an open service) a shell
    match s.expect(&[&p.login, &p.password, &p.shell]).await {
        Seen::Pattern(0) => {
            if let Err(e) = s.send(user).await {
                return unanswered(&s, &e);
            }
            // a locked account may be refused before any password is asked for
            match s.expect(&[&p.password, &p.shell, &p.login_rejected]).await {
                Seen::Pattern(0) => {}
                Seen::Pattern(1) => return (LoginAnswer::Accepted, s.transcript()),
                Seen::Pattern(_) => return (LoginAnswer::Rejected, s.transcript()),
                Seen::Closed => return unanswered(&s, "closed after the user name"),
                Seen::Timeout => return unanswered(&s, "no password prompt"),
            }
        }
        Seen::Pattern(1) => {}
        Seen::Pattern(_) => return (LoginAnswer::Accepted, s.transcript()),
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
        Seen::Pattern(0) if change == 1 => {
            let o = s.forced_or_nag(&p.shell).await;
            if o == LoginAnswer::Accepted {
                let note =
                    " [a command typed after the demand for a new password ran: a reminder, not a forced change]";
                s.all.extend_from_slice(note.as_bytes());
            }
            o
        }
        Seen::Pattern(i) if i == change => LoginAnswer::Accepted,
        Seen::Pattern(_) => LoginAnswer::Rejected,
        Seen::Closed => LoginAnswer::Unanswered("closed after the password without a word".into()),
        Seen::Timeout => LoginAnswer::Unanswered("no answer to the password".into()),
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), s.conn.shutdown()).await;
    (outcome, s.transcript())
}

impl Session {
    /// The device printed the words of a password change: a command typed next tells a
    /// forced change (the dialog takes it, or the session ends) from a reminder in front
    /// of a working shell ([`super::target::ShellProbe`]).
    async fn forced_or_nag(&mut self, shell: &regex::bytes::Regex) -> LoginAnswer {
        use super::target::ProbeAnswer;
        let probe = super::target::ShellProbe::new();
        self.deadline = self.deadline.max(Instant::now() + super::target::PROBE_WAIT);
        if self.send(&probe.line).await.is_err() {
            return ProbeAnswer::outcome(None, true);
        }
        let until = Instant::now() + super::target::PROBE_WAIT;
        let mut buf = [0u8; 4096];
        loop {
            if let Some(a) = probe.read(&self.seen, Some(shell)) {
                return ProbeAnswer::outcome(Some(a), false);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || self.all.len() > MAX_READ {
                return ProbeAnswer::outcome(None, false);
            }
            let n = match tokio::time::timeout(left, self.conn.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => n,
                // the device ended the session
                Ok(_) => return ProbeAnswer::outcome(None, true),
                Err(_) => return ProbeAnswer::outcome(None, false),
            };
            let (mut data, mut reply) = (Vec::new(), Vec::new());
            self.neg.feed(&buf[..n], &mut data, &mut reply);
            if !reply.is_empty() && self.write_within(&reply).await.is_err() {
                return ProbeAnswer::outcome(None, true);
            }
            self.visible.push(&data, &mut self.seen);
            self.all.extend_from_slice(&data);
        }
    }
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
/// Returns the console and whether it is at the shell (false: a forced password change's
/// dialog is open).
pub async fn shell_console(t: &Target, user: &str, password: &str) -> Result<(Console, bool), String> {
    let p = t
        .service
        .prompts
        .clone()
        .ok_or("the telnet service declares no prompts")?;
    let conn = super::target::connect(t).await?;
    let (mut rd, mut wr) = tokio::io::split(conn);
    let feed = Feed::one_session(std::time::Instant::now());
    feed.event(format!("telnet session to {}", t.describe()), Some(true));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let fed = feed.clone();
    let write_limit = t.service.timeout;
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
                        if !reply.is_empty() && !matches!(tokio::time::timeout(write_limit, wr.write_all(&reply)).await, Ok(Ok(()))) {
                            fed.event("the telnet session ended (the device took no more)".into(), Some(false));
                            break;
                        }
                        if !data.is_empty() {
                            fed.rx(&data);
                        }
                    }
                },
                w = rx.recv() => match w {
                    Some(bytes) => {
                        let sent = tokio::time::timeout(write_limit, async {
                            wr.write_all(&escape(&bytes)).await?;
                            wr.flush().await
                        });
                        if !matches!(sent.await, Ok(Ok(()))) {
                            fed.event("the telnet session ended (the device took no more)".into(), Some(false));
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
    let c = Console::new(feed, std::sync::Arc::new(super::target::Pipe::new(tx)));
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
    // a shell; or (a change forced at this login: PAM's expired password behind telnetd)
    // the change dialog, left open for the console's password steps to answer
    let mut pats = vec![p.shell.clone(), p.login_rejected.clone(), p.login.clone()];
    pats.extend(p.password_change.clone());
    match wait(pats).await? {
        0 => Ok((c, true)),
        3 => Ok((c, false)),
        _ => {
            c.close();
            Err("the login was refused".into())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::services::{RemotePrompts, Service, ServiceKind};
    use crate::remote::LoginDriver;
    use std::time::Duration;
    use tokio::io::{AsyncBufReadExt, BufReader};

    fn target(port: u16, timeout: Duration) -> Target {
        let re = |s: &str| regex::bytes::Regex::new(s).unwrap();
        let mut service = Service::bare(
            "telnet".into(),
            ServiceKind::Telnet,
            "127.0.0.1".parse().unwrap(),
            port,
            timeout,
        );
        service.prompts = Some(RemotePrompts {
            login: re("login: $"),
            password: re("Password: $"),
            shell: re(r"\$ $"),
            login_rejected: re("Login incorrect"),
            password_change: Some(re("(?i)change your password")),
        });
        service.after = 3;
        Target::new(service, port)
    }

    /// A telnet-less line service: login, password, then what `after_login` does with each
    /// line typed after the password (None: close; an answer ending in EOT, `\u{4}`: that
    /// answer, then close).
    async fn device(after_login: &'static str, then: fn(&str) -> Option<String>) -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = l.accept().await else { return };
                tokio::spawn(async move {
                    let (r, mut w) = s.into_split();
                    let mut lines = BufReader::new(r).lines();
                    let _ = w.write_all(b"login: ").await;
                    let _ = lines.next_line().await;
                    let _ = w.write_all(b"Password: ").await;
                    let _ = lines.next_line().await;
                    let _ = w.write_all(after_login.as_bytes()).await;
                    while let Ok(Some(line)) = lines.next_line().await {
                        match then(line.trim_end()) {
                            Some(out) => {
                                let _ = w.write_all(out.trim_end_matches('\u{4}').as_bytes()).await;
                                if out.ends_with('\u{4}') {
                                    return;
                                }
                            }
                            None => return,
                        }
                    }
                });
            }
        });
        port
    }

    /// A POSIX shell's answer to `echo $((a+b))`.
    fn shell(line: &str) -> Option<String> {
        let sum = line
            .strip_prefix("echo $((")
            .and_then(|r| r.strip_suffix("))"))
            .and_then(|e| e.split_once('+'))
            .map(|(a, b)| a.parse::<u64>().unwrap_or(0) + b.parse::<u64>().unwrap_or(0));
        Some(match sum {
            Some(n) => format!("{line}\r\n{n}\r\n$ "),
            None => format!("{line}\r\n$ "),
        })
    }

    #[tokio::test]
    async fn a_reminder_in_front_of_a_working_shell_is_access_not_a_forced_change() {
        let nag = "\r\nThe default password is in use, please change your password immediately\r\n$ ";
        let t = target(device(nag, shell).await, Duration::from_secs(3));
        let tried = t.attempt("admin", "admin").await;
        assert_eq!(tried.outcome, LoginAnswer::Accepted, "{}", tried.detail);
        assert!(
            tried.detail.contains("a reminder, not a forced change"),
            "{}",
            tried.detail
        );
        // a CLI without arithmetic: its prompt comes back after the typed line
        let cli = |l: &str| Some(format!("{l}\r\nunknown command\r\n$ "));
        let t = target(device(nag, cli).await, Duration::from_secs(3));
        assert_eq!(t.attempt("admin", "admin").await.outcome, LoginAnswer::Accepted);
    }

    #[tokio::test]
    async fn a_change_dialog_that_takes_the_next_line_or_ends_is_a_forced_change() {
        // OpenSSH/PAM style: the typed line is taken as the current password, then the end
        let pam = "\r\nYou are required to change your password immediately\r\nCurrent password: ";
        let t = target(
            device(pam, |_| {
                Some("passwd: Authentication token manipulation error\r\n\u{4}".into())
            })
            .await,
            Duration::from_secs(3),
        );
        let ended = device(pam, |_| None).await;
        assert_eq!(t.attempt("admin", "admin").await.outcome, LoginAnswer::PasswordChange);
        assert_eq!(
            target(ended, Duration::from_secs(3))
                .attempt("admin", "admin")
                .await
                .outcome,
            LoginAnswer::PasswordChange
        );
        // a dialog that only asks again
        let dialog = "\r\nPlease change your password\r\nNew password: ";
        let t = target(
            device(dialog, |_| Some("\r\nRetype new password: ".into())).await,
            Duration::from_secs(3),
        );
        assert_eq!(t.attempt("admin", "admin").await.outcome, LoginAnswer::PasswordChange);
    }

    /// A greeting as busybox telnetd prints it (`\r\n\rNAME login: `) and colour codes in
    /// the prompts: the console's anchored prompts match, as on the serial console.
    #[tokio::test]
    async fn carriage_returns_and_colours_do_not_hide_the_console_prompts() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (r, mut w) = s.into_split();
                    let mut lines = BufReader::new(r).lines();
                    let _ = w.write_all(b"\r\n\rcam-01 login: ").await;
                    let _ = lines.next_line().await;
                    let _ = w.write_all(b"\r\x1b[1mPassword:\x1b[0m ").await;
                    let pw = lines.next_line().await.ok().flatten().unwrap_or_default();
                    let answer: &[u8] = if pw.trim_end() == "right" {
                        b"\r\n\r~ # "
                    } else {
                        b"\r\n\rLogin incorrect\r\n"
                    };
                    let _ = w.write_all(answer).await;
                    let _ = lines.next_line().await;
                });
            }
        });
        let re = |s: &str| regex::bytes::Regex::new(s).unwrap();
        let mut t = target(port, Duration::from_secs(3));
        t.service.prompts = Some(RemotePrompts {
            login: re(r"(?m)^\S+ login: $"),
            password: re(r"(?m)^Password: $"),
            shell: re(r"(?m)^~ # $"),
            login_rejected: re(r"(?m)^Login incorrect$"),
            password_change: None,
        });
        assert_eq!(t.attempt("root", "right").await.outcome, LoginAnswer::Accepted);
        assert_eq!(t.attempt("root", "wrong").await.outcome, LoginAnswer::Rejected);
    }

    #[tokio::test]
    async fn the_words_of_a_change_then_silence_decide_nothing() {
        // it says the right words, then neither runs the line nor asks for a password
        let words = "\r\nYou are required to change your password immediately\r\n";
        let t = target(device(words, |_| Some(String::new())).await, Duration::from_secs(3));
        let tried = t.attempt("admin", "admin").await;
        assert!(
            matches!(&tried.outcome, LoginAnswer::Unanswered(why) if why.contains("neither a shell nor a change dialog")),
            "{:?}",
            tried.outcome
        );
    }

    #[tokio::test]
    async fn a_device_that_floods_negotiation_and_stops_reading_cannot_hold_an_attempt() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let Ok((mut s, _)) = l.accept().await else { return };
            // DO <option> forever, never reading what the client answers
            let flood: Vec<u8> = (0..4096u32).flat_map(|i| [IAC, DO, 30 + (i % 200) as u8]).collect();
            while s.write_all(&flood).await.is_ok() {}
        });
        let t = target(port, Duration::from_secs(1));
        let t0 = std::time::Instant::now();
        let tried = t.attempt("admin", "admin").await;
        assert!(
            matches!(tried.outcome, LoginAnswer::Unanswered(_)),
            "{:?}",
            tried.outcome
        );
        assert!(
            t0.elapsed() <= t.attempt_limit() + Duration::from_secs(1),
            "{:?}",
            t0.elapsed()
        );
    }

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
