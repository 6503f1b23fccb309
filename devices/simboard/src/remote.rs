//! The board's remote login services: a telnet login and a web admin page (an HTML login
//! form, and HTTP Basic on /admin). Both check the same account as the console, read
//! from the board's flash (its state file) at every attempt.
//!
//! The good board refuses remote logins while the factory password is still in force
//! (the owner sets a password on the console first), and locks remote logins for
//! `--lockout-ms` after two wrong passwords in a row (per service; a right login resets the count;
//! while locked every attempt is refused, without saying why). Flaws: the factory password
//! works remotely before setup (`remote-factory-login`), a hidden `support`/`support`
//! account (`default-account`), no lockout (`no-login-throttle`). The telnet shell has
//! `passwd`, with the console's password rules (and its weak-passwords flaw). With the
//! legacy-tls flaw both services run an old TLS stack that agrees to TLS 1.0 and 1.1.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::board::{Flaw, State};

const FAILURES_BEFORE_LOCK: u32 = 2;

#[derive(Debug, Clone)]
pub struct RemoteOptions {
    pub address: IpAddr,
    pub telnet_port: Option<u16>,
    pub web_port: Option<u16>,
    pub ssh_port: Option<u16>,
    /// The board's own MQTT broker (a hub's, for its sensors), on the same account.
    pub broker_port: Option<u16>,
    /// A status page anyone may read (no login), over the services' TLS when there is one.
    pub status_port: Option<u16>,
    /// Plain HTTP that only redirects to the web admin page over HTTPS.
    pub redirect_port: Option<u16>,
    pub lockout: Duration,
    pub state: PathBuf,
    pub factory_user: String,
    pub factory_password: String,
    pub flaws: Vec<Flaw>,
    /// Serve both services over TLS (`--tls-dir`), as a board with encrypted management does.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// The key every unit's firmware holds (the shared-tls-key flaw): a test key, committed on
/// purpose, since a key in the firmware is public.
const FIRMWARE_KEY: &str = include_str!("firmware/tls-key.pem");

/// The board's TLS identity: a self-signed certificate it made at its first boot and keeps
/// in `dir` (as many boards do), loaded at later boots. Its key is its own, unless the
/// shared-tls-key flaw takes the firmware's; the expired-certificate flaw dates it in the past.
pub fn server_tls(dir: &std::path::Path, flaws: &[Flaw]) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let (shared, expired) = (
        flaws.contains(&Flaw::SharedTlsKey),
        flaws.contains(&Flaw::ExpiredCertificate),
    );
    let tag = format!(
        "{}{}",
        if shared { "-shared" } else { "" },
        if expired { "-expired" } else { "" }
    );
    let (cert, key) = (
        dir.join(format!("simboard-tls{tag}.pem")),
        dir.join(format!("simboard-tls{tag}.key")),
    );
    if !cert.exists() || !key.exists() {
        let pair = if shared {
            rcgen::KeyPair::from_pem(FIRMWARE_KEY).map_err(|e| format!("firmware key: {e}"))?
        } else {
            rcgen::KeyPair::generate().map_err(|e| format!("TLS key: {e}"))?
        };
        let mut params = rcgen::CertificateParams::new(vec!["simboard.local".to_string()])
            .map_err(|e| format!("TLS certificate: {e}"))?;
        let now = time::OffsetDateTime::now_utc();
        if expired {
            params.not_before = now - time::Duration::days(400);
            params.not_after = now - time::Duration::days(35);
        } else {
            params.not_before = now - time::Duration::days(1);
            params.not_after = now + time::Duration::days(3650);
        }
        let made = params.self_signed(&pair).map_err(|e| format!("TLS certificate: {e}"))?;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::write(&key, pair.serialize_pem()).map_err(|e| format!("{}: {e}", key.display()))?;
        std::fs::write(&cert, made.pem()).map_err(|e| format!("{}: {e}", cert.display()))?;
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate: {e}"))?;
    Ok(Arc::new(cfg))
}

/// A connection to a service: plain TCP or TLS over it.
pub(crate) trait Conn: Read + Write {}
impl<T: Read + Write> Conn for T {}

#[derive(Debug, Default)]
struct Guard {
    failures: u32,
    locked_until: Option<Instant>,
}

#[derive(Clone)]
pub(crate) struct Accounts {
    opts: RemoteOptions,
    guard: Arc<Mutex<Guard>>,
    /// The web admin's sessions: cookie value -> the password in force at its login.
    sessions: Arc<Mutex<std::collections::HashMap<String, Option<String>>>>,
}

impl Accounts {
    /// Stores one of the owner's settings in the board's flash.
    pub(crate) fn set_data(&self, key: &str, value: String) {
        let mut st = State::load(&self.opts.state);
        st.data.retain(|(k, _)| k != key);
        st.data.push((key.into(), value));
        st.save(&self.opts.state);
    }

    pub(crate) fn has(&self, f: Flaw) -> bool {
        self.opts.flaws.contains(&f)
    }

    /// The remote-factory-nag flaw's reminder while the factory password is in force (its
    /// shell then runs commands all the same).
    fn nag(&self) -> &'static str {
        if self.has(Flaw::RemoteFactoryNag) && State::load(&self.opts.state).password.is_none() {
            "WARNING: the default password is in use. You are required to change your password immediately.\r\n"
        } else {
            ""
        }
    }

    /// The owner's password now (None: the factory password is in force).
    pub(crate) fn password_now(&self) -> Option<String> {
        State::load(&self.opts.state).password
    }

    /// Whether a session opened while the password was `opened_with` must end: the good
    /// board ends every session when the password changes (but the sessions-survive-change
    /// flaw).
    pub(crate) fn session_over(&self, opened_with: &Option<String>) -> bool {
        !self.has(Flaw::SessionsSurviveChange) && self.password_now() != *opened_with
    }

    /// Whether these credentials log in remotely now.
    pub(crate) fn check(&self, user: &str, password: &str) -> bool {
        let throttled = !self.has(Flaw::NoLoginThrottle);
        let mut g = self.guard.lock().unwrap_or_else(|e| e.into_inner());
        if throttled && g.locked_until.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        let state = State::load(&self.opts.state);
        let factory = user == self.opts.factory_user && password == self.opts.factory_password;
        let ok = if self.has(Flaw::DefaultAccount) && user == "support" && password == "support" {
            true
        } else if user != self.opts.factory_user {
            false
        } else {
            match &state.password {
                None => factory && (self.has(Flaw::RemoteFactoryLogin) || self.has(Flaw::RemoteFactoryNag)),
                Some(current) => password == current || (factory && self.has(Flaw::FactoryPasswordKept)),
            }
        };
        if ok {
            g.failures = 0;
            g.locked_until = None;
        } else {
            g.failures += 1;
            if throttled && g.failures >= FAILURES_BEFORE_LOCK {
                g.failures = 0;
                g.locked_until = Some(Instant::now() + self.opts.lockout);
            }
        }
        ok
    }
}

pub fn start(opts: RemoteOptions) {
    let accounts = Accounts {
        opts: opts.clone(),
        guard: Arc::new(Mutex::new(Guard::default())),
        sessions: Arc::default(),
    };
    // separate daemons, separate failure counts
    let fresh = || Accounts {
        guard: Arc::new(Mutex::new(Guard::default())),
        ..accounts.clone()
    };
    if let Some(p) = opts.ssh_port {
        let a = fresh();
        let (n, o) = (a.clone(), a.clone());
        crate::ssh::serve(
            opts.address,
            p,
            Arc::new(move |u: &str, pw: &str| a.check(u, pw)),
            Arc::new(move || n.nag()),
            Arc::new(move |opened_with: &Option<String>| o.session_over(opened_with)),
            Arc::new({
                let s = opts.state.clone();
                move || State::load(&s).password
            }),
            opts.flaws.contains(&Flaw::WeakSsh),
        );
    }
    if let Some(p) = opts.telnet_port {
        serve(opts.address, p, fresh(), telnet);
    }
    if let Some(p) = opts.web_port {
        let mut a = fresh();
        if opts.flaws.contains(&Flaw::PasswordOverHttp) {
            a.opts.tls = None;
        }
        serve(opts.address, p, a, web);
    }
    if let Some(p) = opts.broker_port {
        serve(opts.address, p, fresh(), crate::broker::serve);
    }
    if let Some(p) = opts.status_port {
        serve(opts.address, p, fresh(), status_page);
    }
    if let Some(p) = opts.redirect_port {
        let mut plain = fresh();
        plain.opts.tls = None;
        serve(opts.address, p, plain, redirect);
    }
    if opts.flaws.contains(&Flaw::TelnetListening) {
        // the same console, left on telnet's port in clear
        let mut plain = fresh();
        plain.opts.tls = None;
        serve(opts.address, 23, plain, telnet);
    }
    if opts.flaws.contains(&Flaw::DebugPort) {
        let mut plain = fresh();
        plain.opts.tls = None;
        serve(opts.address, 4444, plain, debug_monitor);
    }
}

/// The debug-port flaw: a monitor that answers anyone (it only echoes, but it listens).
fn debug_monitor(w: &mut dyn Conn, _: &Accounts) {
    let _ = w.write_all(b"SimBoard debug monitor v0.3\r\ndebug> ");
    let mut b = [0u8; 256];
    for _ in 0..16 {
        match w.read(&mut b) {
            Ok(n) if n > 0 => {
                let _ = w.write_all(b"?\r\ndebug> ");
            }
            _ => return,
        }
    }
}

fn serve(ip: IpAddr, port: u16, accounts: Accounts, handler: fn(&mut dyn Conn, &Accounts)) {
    let listener = match TcpListener::bind((ip, port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("remote: cannot listen on {ip}:{port}: {e}");
            return;
        }
    };
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            let a = accounts.clone();
            let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
            std::thread::spawn(move || match a.opts.tls.clone() {
                Some(_) if a.has(Flaw::LegacyTls) && legacy_hello(&conn) => {
                    // the old stack agrees to the old version; it gets no further here
                    let _ = (&conn).write_all(&legacy_server_hello(&conn));
                    let mut sink = [0u8; 512];
                    let mut c = &conn;
                    while matches!(c.read(&mut sink), Ok(n) if n > 0) {}
                }
                Some(cfg) => {
                    let Ok(tls) = rustls::ServerConnection::new(cfg) else {
                        return;
                    };
                    let mut s = rustls::StreamOwned::new(tls, conn);
                    handler(&mut s, &a);
                    s.conn.send_close_notify();
                    let _ = s.flush();
                }
                None => {
                    let mut conn = conn;
                    handler(&mut conn, &a);
                }
            });
        }
    });
}

/// The ClientHello waiting on `conn` (peeked, not consumed): its highest version and its
/// first cipher suite.
fn peek_hello(conn: &std::net::TcpStream) -> Option<(u16, u16)> {
    let mut b = [0u8; 2048];
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let n = conn.peek(&mut b).ok()?;
    let b = &b[..n];
    let u16_at = |i: usize| Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]));
    if *b.first()? != 22 || *b.get(5)? != 1 {
        return None;
    }
    let mut version = u16_at(9)?;
    let mut at = 11 + 32;
    at += 1 + *b.get(at)? as usize;
    let suites = u16_at(at)? as usize;
    let first = u16_at(at + 2)?;
    at += 2 + suites;
    at += 1 + *b.get(at)? as usize;
    let end = (at + 2 + u16_at(at)? as usize).min(b.len());
    at += 2;
    while at + 4 <= end {
        let (kind, len) = (u16_at(at)?, u16_at(at + 2)? as usize);
        if kind == 43 {
            // supported_versions: the highest listed
            let list = b.get(at + 5..at + 4 + len)?;
            version = list
                .chunks(2)
                .filter(|c| c.len() == 2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .max()?;
        }
        at += 4 + len;
    }
    Some((version, first))
}

/// Whether the hello offers nothing newer than TLS 1.1.
fn legacy_hello(conn: &std::net::TcpStream) -> bool {
    peek_hello(conn).is_some_and(|(v, _)| (0x0300..=0x0302).contains(&v))
}

/// A ServerHello at the client's old version with its first suite.
fn legacy_server_hello(conn: &std::net::TcpStream) -> Vec<u8> {
    let (version, suite) = peek_hello(conn).unwrap_or((0x0301, 0x002f));
    let mut body = vec![2, 0, 0, 38];
    body.extend_from_slice(&version.to_be_bytes());
    body.extend((0..32u8).map(|i| i.wrapping_mul(37).wrapping_add(11)));
    body.push(0);
    body.extend_from_slice(&suite.to_be_bytes());
    body.push(0);
    let mut rec = vec![22];
    rec.extend_from_slice(&version.to_be_bytes());
    rec.extend_from_slice(&(body.len() as u16).to_be_bytes());
    rec.extend_from_slice(&body);
    rec
}

/// Reads one line typed over telnet, dropping the client's option answers.
fn telnet_line(r: &mut dyn Conn) -> Option<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    let mut iac = 0u8; // bytes of a command still to skip
    loop {
        if r.read(&mut b).ok()? == 0 {
            return None;
        }
        let c = b[0];
        if iac > 0 {
            // IAC WILL/WONT/DO/DONT take one more byte
            iac = if iac == 2 && (251..=254).contains(&c) { 1 } else { 0 };
            continue;
        }
        match c {
            255 => iac = 2,
            b'\r' | b'\n' => return Some(String::from_utf8_lossy(&line).into_owned()),
            0 => {}
            c if line.len() < 256 => line.push(c),
            _ => {}
        }
    }
}

fn telnet(w: &mut dyn Conn, a: &Accounts) {
    // IAC WILL ECHO, IAC WILL SUPPRESS-GO-AHEAD: the server echoes (not the password)
    let _ = w.write_all(&[255, 251, 1, 255, 251, 3]);
    let _ = w.write_all(b"\r\nSimBoard remote console\r\n");
    for _ in 0..3 {
        let _ = w.write_all(b"\r\nsimboard login: ");
        let Some(mut user) = telnet_line(w) else { return };
        if user.is_empty() {
            // the LF after a CR
            let Some(u) = telnet_line(w) else { return };
            user = u;
        }
        let _ = w.write_all(format!("{user}\r\nPassword: ").as_bytes());
        let Some(mut password) = telnet_line(w) else {
            return;
        };
        if password.is_empty() {
            let Some(p) = telnet_line(w) else { return };
            password = p;
        }
        if a.check(&user, &password) {
            let _ = w.write_all(format!("\r\nWelcome to SimBoard, {user}\r\n{}$ ", a.nag()).as_bytes());
            // the password this session was opened with: a change made elsewhere ends it
            let mut opened_with = a.password_now();
            loop {
                let Some(cmd) = telnet_line(w) else { return };
                if !cmd.trim().is_empty() && a.session_over(&opened_with) {
                    let _ = w.write_all(b"\r\nThe password was changed: this session has ended.\r\n");
                    return;
                }
                match cmd.trim() {
                    "" => continue,
                    "exit" | "logout" => return,
                    "passwd" => {
                        let _ = w.write_all(b"passwd\r\n");
                        if telnet_passwd(w, a, &user).is_none() {
                            return;
                        }
                        opened_with = a.password_now();
                        let _ = w.write_all(b"$ ");
                    }
                    c => {
                        let _ = w.write_all(format!("{c}\r\nsh: {c}: not found\r\n$ ").as_bytes());
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
        let _ = w.write_all(b"\r\nLogin incorrect\r\n");
    }
}

/// One line typed over telnet, skipping the empty one a CR LF leaves behind.
fn telnet_text(w: &mut dyn Conn) -> Option<String> {
    match telnet_line(w)? {
        l if l.is_empty() => telnet_line(w),
        l => Some(l),
    }
}

/// `passwd` at the telnet shell: the console's account, the console's rules (and flaws).
fn telnet_passwd(w: &mut dyn Conn, a: &Accounts, user: &str) -> Option<()> {
    let _ = w.write_all(b"Current password: ");
    let current = telnet_text(w)?;
    let _ = w.write_all(b"\r\n");
    let state = State::load(&a.opts.state);
    let expected = state
        .password
        .clone()
        .unwrap_or_else(|| a.opts.factory_password.clone());
    if current != expected {
        std::thread::sleep(Duration::from_millis(100));
        let _ = w.write_all(b"passwd: Authentication token manipulation error\r\n");
        return Some(());
    }
    for _ in 0..3 {
        let _ = w.write_all(b"New password: ");
        let new = telnet_text(w)?;
        let _ = w.write_all(b"\r\nRetype new password: ");
        let again = telnet_text(w)?;
        let _ = w.write_all(b"\r\n");
        if new != again {
            let _ = w.write_all(b"Sorry, passwords do not match.\r\n");
            continue;
        }
        let mut state = State::load(&a.opts.state);
        let rules = crate::board::password_policy(
            &new,
            user,
            (!a.has(Flaw::FactoryPasswordReusable)).then_some(a.opts.factory_password.as_str()),
            state.password.as_deref(),
            a.has(Flaw::WeakPasswords),
        );
        if let Err(why) = rules {
            let _ = w.write_all(format!("BAD PASSWORD: {why}\r\n").as_bytes());
            continue;
        }
        state.password = Some(new);
        state.save(&a.opts.state);
        let _ = w.write_all(b"passwd: password updated successfully\r\n");
        return Some(());
    }
    let _ = w.write_all(b"passwd: have exhausted maximum number of retries for service\r\n");
    Some(())
}

fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let s = s.trim().trim_end_matches('=');
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        acc = (acc << 6) | u32::from(val(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The login-free status page: what a camera shows anyone on the LAN.
fn status_page(w: &mut dyn Conn, _: &Accounts) {
    if read_head(w).is_some() {
        respond(
            w,
            "200 OK",
            "",
            "<html><body><h1>SimBoard status</h1><p>firmware 1.0.0, link up</p></body></html>",
        );
    }
}

/// Plain HTTP on its own port: every request is sent to the admin page over HTTPS.
fn redirect(w: &mut dyn Conn, a: &Accounts) {
    if read_head(w).is_none() {
        return;
    }
    let to = match a.opts.web_port {
        Some(p) => format!("Location: https://{}:{p}/login\r\n", a.opts.address),
        None => String::new(),
    };
    respond(w, "301 Moved Permanently", &to, "");
}

/// The policy an older firmware shipped: no word on deleting data or the account.
const OLD_POLICY: &str = "# Privacy policy\n\nWe collect this personal data: your e-mail address and the serial number of your device.\nWe use it to show you readings in the app; that is its only purpose.\nWe share data with one third party, the firm that hosts our servers.\nWe keep readings for 12 months.\nIf we change this policy, we notify you by e-mail 30 days in advance.\nYou can unsubscribe from marketing e-mails at any time.\n";

fn respond(w: &mut dyn Conn, status: &str, extra: &str, body: &str) {
    let _ = w.write_all(
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
}

/// The request line and headers, read byte by byte up to the blank line (at most 16 KiB).
fn read_head(r: &mut dyn Conn) -> Option<(String, Vec<String>)> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && !head.ends_with(b"\n\n") {
        if head.len() >= 16 * 1024 || r.read(&mut b).ok()? == 0 {
            return None;
        }
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.lines().map(|l| l.trim_end().to_string());
    let request = lines.next()?;
    Some((request, lines.filter(|l| !l.is_empty()).collect()))
}

fn web(w: &mut dyn Conn, a: &Accounts) {
    let Some((request, headers)) = read_head(w) else { return };
    let header = |name: &str| {
        headers.iter().find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let mut parts = request.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    match (method, path) {
        // the privacy policy, as its owner reads it on the device
        ("GET", "/privacy") => {
            let policy = if a.opts.flaws.contains(&Flaw::ServesOldPolicy) {
                OLD_POLICY
            } else {
                include_str!("../../simboard-docs/privacy-policy.md")
            };
            respond(w, "200 OK", "", policy)
        }
        // where a researcher looks for whom to tell (RFC 9116)
        ("GET", "/.well-known/security.txt") => {
            let text = include_str!("../../simboard-docs/security.txt");
            let text = if a.opts.flaws.contains(&Flaw::ExpiredSecurityTxt) {
                text.replace("Expires: 2027-11-01T00:00:00Z", "Expires: 2024-01-01T00:00:00Z")
            } else {
                text.to_string()
            };
            respond(w, "200 OK", "Content-Type: text/plain; charset=utf-8\r\n", &text)
        }
        ("GET", "/admin") => {
            let creds = header("authorization")
                .and_then(|v| v.strip_prefix("Basic ").and_then(b64_decode))
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            let ok = creds
                .as_deref()
                .and_then(|c| c.split_once(':'))
                .is_some_and(|(u, p)| a.check(u, p));
            if ok {
                respond(w, "200 OK", "", "<h1>SimBoard admin</h1>");
            } else {
                respond(
                    w,
                    "401 Unauthorized",
                    "WWW-Authenticate: Basic realm=\"SimBoard\"\r\n",
                    "<h1>401</h1>",
                );
            }
        }
        ("GET", "/login") => respond(
            w,
            "200 OK",
            "",
            "<form method=post action=/login><input name=user><input name=password type=password></form>",
        ),
        ("POST", "/login") => {
            let len: usize = header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
                .min(4096);
            let mut body = vec![0u8; len];
            if w.read_exact(&mut body).is_err() {
                return;
            }
            let body = String::from_utf8_lossy(&body).into_owned();
            let field = |name: &str| {
                body.split('&').find_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    (url_decode(k) == name).then(|| url_decode(v))
                })
            };
            let (user, password) = (field("user").unwrap_or_default(), field("password").unwrap_or_default());
            if a.check(&user, &password) {
                let sid = session_id();
                a.sessions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(sid.clone(), a.password_now());
                let cookie = format!("Set-Cookie: sid={sid}; HttpOnly; Secure; Path=/\r\n");
                respond(w, "200 OK", &cookie, &format!("<p>Welcome, {user}</p>"));
            } else {
                respond(w, "200 OK", "", "<p>Invalid user name or password</p>");
            }
        }
        ("POST", "/api/config") => {
            // the owner's settings (update_server=...): a live session only, unless the
            // config-without-auth flaw
            let len: usize = header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
                .min(4096);
            let mut body = vec![0u8; len];
            if w.read_exact(&mut body).is_err() {
                return;
            }
            let body = String::from_utf8_lossy(&body).into_owned();
            let authorised = live_session(a, header("cookie")) || a.has(Flaw::ConfigWithoutAuth);
            // the owner's settings this API takes: its update server, and the owner's
            // e-mail address (as the shell's `set owner_email`)
            let setting = body.split('&').find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                let k = url_decode(k);
                ["update_server", "owner_email"]
                    .contains(&k.as_str())
                    .then(|| (k, url_decode(v)))
            });
            let save = |(k, v): (String, String)| a.set_data(&k, v);
            let fits = |(_, v): &(String, String)| !v.is_empty() && v.len() <= 253;
            match (authorised, setting) {
                (false, Some(kv)) if a.has(Flaw::ConfigSavedBeforeAuth) && fits(&kv) => {
                    save(kv);
                    respond(w, "401 Unauthorized", "", "<p>Please log in</p>")
                }
                (false, _) => respond(w, "401 Unauthorized", "", "<p>Please log in</p>"),
                (true, Some(kv)) if fits(&kv) => {
                    save(kv);
                    respond(w, "200 OK", "", "<p>saved</p>");
                }
                (true, _) => respond(
                    w,
                    "400 Bad Request",
                    "",
                    "<p>update_server=HOST or owner_email=ADDRESS</p>",
                ),
            }
        }
        ("GET", "/home") => {
            // the session cookie a login set: alive while the password it was opened with
            // is in force (the sessions-survive-change flaw: for ever)
            if live_session(a, header("cookie")) {
                respond(w, "200 OK", "", "<h1>SimBoard home</h1>");
            } else {
                respond(w, "303 See Other", "Location: /login\r\n", "<p>Please log in</p>");
            }
        }
        _ => respond(w, "404 Not Found", "", "<h1>404</h1>"),
    }
}

/// Whether the `Cookie` header names a session a login opened and that is still alive (its
/// password still in force; the sessions-survive-change flaw: for ever).
fn live_session(a: &Accounts, cookie: Option<String>) -> bool {
    let sid = cookie.and_then(|c| {
        c.split(';')
            .find_map(|kv| kv.trim().strip_prefix("sid=").map(str::to_string))
    });
    let opened_with = sid.and_then(|s| a.sessions.lock().unwrap_or_else(|e| e.into_inner()).get(&s).cloned());
    matches!(&opened_with, Some(p) if !a.session_over(p))
}

/// A session cookie's value: 128 random bits from the system.
fn session_id() -> String {
    use std::io::Read;
    let mut b = [0u8; 16];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        b.copy_from_slice(&t.to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn decoders() {
        assert_eq!(
            super::b64_decode("YWRtaW46YWRtaW4=").as_deref(),
            Some(&b"admin:admin"[..])
        );
        assert_eq!(super::url_decode("a+b%26c%3D"), "a b&c=");
        assert_eq!(super::url_decode("100%"), "100%");
    }
}
