//! What a login attempt is made against and how its answer is read: the target service,
//! the outcome of one attempt, the connection (TLS or not), the printable views of what the
//! device said, and the shell probe that tells a forced password change from a reminder.
//! The drivers (`telnet`, `ssh`, `http`, ...) build on it; `remote` dispatches to them.

use std::future::Future;
use std::time::Duration;

use crate::config::services::Service;

/// How the device answered one login attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginAnswer {
    /// Logged in: a shell prompt, the page behind the login, CONNACK success.
    Accepted,
    /// The device refused the credentials, in its own words.
    Rejected,
    /// The credentials were taken but a new password is demanded first.
    PasswordChange,
    /// The service takes no passwords at all (an SSH server offering only public keys):
    /// no password, default or guessed, can log in. Says which methods it offers.
    NoPasswords(String),
    /// No decision can be read from the answer (no answer, closed port, unknown reply).
    Unanswered(String),
}

impl LoginAnswer {
    pub fn word(&self) -> &'static str {
        match self {
            LoginAnswer::Accepted => "accepted",
            LoginAnswer::Rejected => "rejected",
            LoginAnswer::PasswordChange => "password_change",
            LoginAnswer::NoPasswords(_) => "no_password_method",
            LoginAnswer::Unanswered(_) => "unanswered",
        }
    }
}

/// One attempt as the driver saw it.
#[derive(Debug, Clone)]
pub struct Tried {
    pub outcome: LoginAnswer,
    /// What the device answered, as it came (at most [`DETAIL_BYTES`], its end): callers
    /// redact it ([`crate::redact::Redactor::redact_window`]) before they escape and shorten
    /// it, so a secret echoed with escape codes between its letters, or cut by the window,
    /// never reaches the evidence.
    pub detail: String,
    /// From connecting to the decision.
    pub latency: Duration,
}

/// A remote login driver.
pub trait LoginDriver {
    /// One login attempt with these credentials on a fresh connection.
    fn attempt(&self, user: &str, password: &str) -> impl Future<Output = Tried> + Send;
}

/// A service made ready to drive: its port rendered.
#[derive(Debug, Clone)]
pub struct Target {
    pub service: Service,
    pub port: u16,
}

impl Target {
    pub fn new(service: Service, port: u16) -> Self {
        Self { service, port }
    }

    /// `name (kind on host:port)`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}{} on {}:{})",
            self.service.name,
            self.service.kind.name(),
            if self.service.tls { " over TLS" } else { "" },
            self.service.host,
            self.port
        )
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.service.host, self.port)
    }

    /// How long one login attempt may take in all: the service's timeout, the look into
    /// the shell after an SSH login, and the shell probe after a password-change demand.
    pub fn attempt_limit(&self) -> Duration {
        self.service.timeout + PROBE_WAIT + Duration::from_secs(3)
    }
}

/// How much of a device's answer an attempt keeps, raw, for its evidence.
pub const DETAIL_BYTES: usize = 1024;

/// The last `max` bytes of `s` (from a character boundary).
pub(super) fn tail_bytes(s: &str, max: usize) -> String {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].to_string()
}

/// At most the last `max` characters of `s` as [`printable`] shows them, `…` in front when
/// shortened: a device's last words decide a login.
pub fn printable_tail(s: &str, max: usize) -> String {
    let shown = printable(s, usize::MAX);
    let n = shown.chars().count();
    if n <= max {
        return shown;
    }
    let mut out = String::from("…");
    out.extend(shown.chars().skip(n - max));
    out
}

/// At most `max` bytes of `s`, control characters shown as escapes: device text goes into
/// reports and terminals.
pub fn printable(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if out.len() >= max {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || ('\u{80}'..='\u{9f}').contains(&c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// A TLS client for login services: the device's certificate is not judged here (COM-03
/// does that); the connection only carries the login.
pub fn insecure_tls() -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    crate::tlscert::trusting_client(crate::bench::provider()).map(|(cfg, _)| cfg)
}

/// Connects within `timeout`, TLS around it when the service says so.
pub async fn connect(t: &Target) -> Result<Box<dyn Stream>, String> {
    let tcp = tokio::time::timeout(t.service.timeout, tokio::net::TcpStream::connect(t.addr()))
        .await
        .map_err(|_| format!("no TCP connection within {:?}", t.service.timeout))?
        .map_err(|e| format!("TCP connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    if !t.service.tls {
        return Ok(Box::new(tcp));
    }
    let name = rustls_pki_types::ServerName::from(t.service.host);
    let tls = tokio::time::timeout(
        t.service.timeout,
        tokio_rustls::TlsConnector::from(insecure_tls()?).connect(name, tcp),
    )
    .await
    .map_err(|_| format!("no TLS handshake within {:?}", t.service.timeout))?
    .map_err(|e| format!("TLS handshake: {e}"))?;
    Ok(Box::new(tls))
}

/// Writes to a remote shell through the task that owns its connection (an SSH channel, a
/// telnet stream): the console's transport for a shell over the network.
#[derive(Debug)]
pub(crate) struct Pipe {
    tx: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedSender<Vec<u8>>>>,
}

impl Pipe {
    pub(crate) fn new(tx: tokio::sync::mpsc::UnboundedSender<Vec<u8>>) -> Self {
        Self {
            tx: std::sync::Mutex::new(Some(tx)),
        }
    }
}

impl crate::console::ConsoleTransport for Pipe {
    fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        let g = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        match g.as_ref() {
            Some(tx) if tx.send(bytes.to_vec()).is_ok() => Ok(()),
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the remote session is closed",
            )),
        }
    }
    fn close(&self) {
        // dropping the sender ends the task, which closes the connection
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// How long a device has to answer the shell probe typed after it demanded a new password.
pub const PROBE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// What tells a forced password change from a reminder: after a device has printed the
/// words of a change ("you must change your password"), a harmless command is typed at
/// whatever prompt follows. A shell answers it (its arithmetic comes back, or its prompt
/// comes back after the line); a change dialog takes it as a password (and asks again) or
/// ends the session. Words alone never decide, and neither does silence.
#[derive(Debug, Clone)]
pub struct ShellProbe {
    /// What is typed (without the line end).
    pub line: String,
    answer: String,
}

impl ShellProbe {
    pub fn new() -> Self {
        loop {
            let (a, b): (u32, u32) = (rand::random_range(10_000..50_000), rand::random_range(10_000..50_000));
            let line = format!("echo $(({a}+{b}))");
            let answer = (a + b).to_string();
            // the echo of the typed line must not contain the answer
            if !line.contains(&answer) {
                return Self { line, answer };
            }
        }
    }

    /// The sum as a whole number in a shell's output (for a console's matcher).
    pub fn answer_pattern(&self) -> regex::bytes::Regex {
        regex::bytes::Regex::new(&format!("(?:^|[^0-9]){}(?:[^0-9]|$)", self.answer))
            .expect("a number always makes a pattern")
    }

    /// What `out` (what came after the probe was typed) shows so far: a shell's answer, a
    /// dialog asking for credentials again (the line was taken as a password, or the
    /// session went back to its login), or nothing decided yet.
    pub fn read(&self, out: &[u8], shell_prompt: Option<&regex::bytes::Regex>) -> Option<ProbeAnswer> {
        if self.answered(out, shell_prompt) {
            return Some(ProbeAnswer::Shell);
        }
        let mut visible = Vec::new();
        crate::console::ansi::AnsiStripper::default().push(out, &mut visible);
        credential_prompt().is_match(&visible).then_some(ProbeAnswer::Dialog)
    }

    /// Whether `out` (what came after the probe was typed) is a shell's answer: the sum,
    /// or — a command line without arithmetic — the shell prompt again after the echo.
    pub fn answered(&self, out: &[u8], shell_prompt: Option<&regex::bytes::Regex>) -> bool {
        let mut visible = Vec::new();
        crate::console::ansi::AnsiStripper::default().push(out, &mut visible);
        let text = String::from_utf8_lossy(&visible);
        let after_echo = match text.find(&self.line) {
            Some(i) => &text[i + self.line.len()..],
            None => &text[..],
        };
        let digits_at = |i: usize| after_echo.as_bytes().get(i).is_some_and(u8::is_ascii_digit);
        let sum = after_echo
            .match_indices(&self.answer)
            .any(|(i, m)| !digits_at(i.wrapping_sub(1)) && !digits_at(i + m.len()));
        sum || shell_prompt.is_some_and(|p| after_echo.contains('\n') && p.is_match(after_echo.as_bytes()))
    }
}

/// A prompt that asks for credentials (a password of any kind, or the login): where a
/// session stands once the device ended what it was, or took a line as a password.
pub fn credential_prompt() -> &'static regex::bytes::Regex {
    static ASKS: std::sync::LazyLock<regex::bytes::Regex> = std::sync::LazyLock::new(|| {
        regex::bytes::Regex::new(r"(?i)(password[^\n]*|login):\s*$").expect("a literal pattern")
    });
    &ASKS
}

/// How a session answered the probe typed after a demand for a new password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeAnswer {
    /// A shell ran it: the demand was a reminder, the login gave access.
    Shell,
    /// A dialog asked for a password (or the login) again: the change is forced.
    Dialog,
}

impl ProbeAnswer {
    /// The login's outcome: a dialog, or a session the device ended, is a forced change;
    /// silence decides nothing.
    pub fn outcome(answer: Option<Self>, ended: bool) -> LoginAnswer {
        match answer {
            Some(ProbeAnswer::Shell) => LoginAnswer::Accepted,
            Some(ProbeAnswer::Dialog) => LoginAnswer::PasswordChange,
            None if ended => LoginAnswer::PasswordChange,
            None => LoginAnswer::Unanswered(
                "it demanded a new password, then answered a typed line with neither a shell nor a change dialog"
                    .into(),
            ),
        }
    }
}

impl Default for ShellProbe {
    fn default() -> Self {
        Self::new()
    }
}

/// A byte stream to a device service.
pub trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}
