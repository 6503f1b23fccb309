//! SSH logins (russh, a pure-Rust client): the `password` method, and
//! `keyboard-interactive` when the server offers only that (PAM). A login that works is
//! followed into a shell for a moment: a server that takes an expired password and then
//! demands a new one (OpenSSH with PAM does) counts as a password change, not as access.
//! The host key is not judged here (the login is what is tested).

use std::sync::Arc;
use std::time::Duration;

use russh::client::{self, AuthResult, KeyboardInteractiveAuthResponse};
use russh::{ChannelMsg, MethodKind};

use super::target::{LoginAnswer, Target};
use crate::console::{Console, Feed};

/// Words of a forced password change, in PAM's and common devices' phrasing.
const CHANGE: &str = r"(?i)(required to change your password|password (has )?expired|must change (your )?password|change your password (now|immediately)|new password:)";

#[derive(Debug)]
struct AnyHostKey;

impl client::Handler for AnyHostKey {
    type Error = russh::Error;

    async fn check_server_key(&mut self, _key: &russh::keys::PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

fn changes(t: &Target) -> Vec<regex::bytes::Regex> {
    static BUILT_IN: std::sync::LazyLock<Option<regex::bytes::Regex>> =
        std::sync::LazyLock::new(|| regex::bytes::Regex::new(CHANGE).ok());
    let mut v: Vec<regex::bytes::Regex> = BUILT_IN.iter().cloned().collect();
    if let Some(p) = t.service.prompts.as_ref().and_then(|p| p.password_change.clone()) {
        v.push(p);
    }
    v
}

pub async fn attempt(t: &Target, user: &str, password: &str) -> (LoginAnswer, String) {
    let limit = t.attempt_limit();
    match tokio::time::timeout(limit, session(t, user, password)).await {
        Err(_) => (
            LoginAnswer::Unanswered(format!("no decision within {limit:?}")),
            String::new(),
        ),
        Ok(Err(e)) => (LoginAnswer::Unanswered(e.clone()), e),
        Ok(Ok(r)) => r,
    }
}

/// How the authentication ended: in, or an answer that is the attempt's outcome.
enum Authed {
    In,
    Out(LoginAnswer, String),
}

/// Connects and authenticates: the password method, keyboard-interactive when that is all
/// the server offers (PAM).
async fn login(t: &Target, user: &str, password: &str) -> Result<(client::Handle<AnyHostKey>, Authed), String> {
    let tcp = tokio::time::timeout(t.service.timeout, tokio::net::TcpStream::connect(t.addr()))
        .await
        .map_err(|_| format!("no TCP connection within {:?}", t.service.timeout))?
        .map_err(|e| format!("TCP connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let config = Arc::new(client::Config {
        inactivity_timeout: Some(t.service.timeout),
        ..Default::default()
    });
    let mut h = client::connect_stream(config, tcp, AnyHostKey)
        .await
        .map_err(|e| format!("SSH handshake: {e}"))?;
    let auth = h
        .authenticate_password(user, password)
        .await
        .map_err(|e| format!("password authentication: {e}"))?;
    let authed = match auth {
        AuthResult::Success => Authed::In,
        // the password method refused it: that is the answer (trying keyboard-interactive
        // as well would make one attempt count twice against the device's limit)
        AuthResult::Failure { remaining_methods, .. }
            if !remaining_methods.contains(&MethodKind::Password)
                && remaining_methods.contains(&MethodKind::KeyboardInteractive) =>
        {
            // PAM behind keyboard-interactive: answer the password prompt, then see what follows
            let mut r = h
                .authenticate_keyboard_interactive_start(user, None)
                .await
                .map_err(|e| format!("keyboard-interactive: {e}"))?;
            let mut answered = false;
            loop {
                match r {
                    KeyboardInteractiveAuthResponse::Success => break Authed::In,
                    KeyboardInteractiveAuthResponse::Failure { .. } => {
                        break Authed::Out(LoginAnswer::Rejected, "keyboard-interactive: failure".into());
                    }
                    KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                        let text: String = prompts
                            .iter()
                            .map(|p| p.prompt.as_str())
                            .collect::<Vec<_>>()
                            .join(" | ");
                        if answered && changes(t).iter().any(|c| c.is_match(text.as_bytes())) {
                            break Authed::Out(
                                LoginAnswer::PasswordChange,
                                format!("keyboard-interactive asks: {text}"),
                            );
                        }
                        if answered && !prompts.is_empty() {
                            // asked for the password again: the first one was wrong
                            break Authed::Out(
                                LoginAnswer::Rejected,
                                format!("keyboard-interactive asks again: {text}"),
                            );
                        }
                        let n = prompts.len();
                        answered |= n > 0;
                        r = h
                            .authenticate_keyboard_interactive_respond(vec![password.to_string(); n])
                            .await
                            .map_err(|e| format!("keyboard-interactive: {e}"))?;
                    }
                }
            }
        }
        AuthResult::Failure { remaining_methods, .. } => {
            let offers = remaining_methods
                .iter()
                .map(|m| format!("{m:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            if remaining_methods.contains(&MethodKind::Password)
                || remaining_methods.contains(&MethodKind::KeyboardInteractive)
            {
                Authed::Out(
                    LoginAnswer::Rejected,
                    format!("authentication failed; the server offers: {offers}"),
                )
            } else {
                Authed::Out(
                    LoginAnswer::NoPasswords(offers.clone()),
                    format!("the server takes no passwords; it offers: {offers}"),
                )
            }
        }
    };
    Ok((h, authed))
}

async fn session(t: &Target, user: &str, password: &str) -> Result<(LoginAnswer, String), String> {
    let (mut h, authed) = login(t, user, password).await?;
    let outcome = match authed {
        Authed::In => after_login(&mut h, t).await,
        Authed::Out(o, d) => (o, d),
    };
    let _ = h.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    Ok(outcome)
}

/// Logs in over SSH and opens a shell on a terminal, as a [`Console`]: what the device
/// prints there is matched and kept as a transcript exactly as on its serial console, so
/// the console's password dialog runs over the network unchanged. The session ends when
/// the console is closed (or dropped with its task's sender).
pub async fn shell_console(t: &Target, user: &str, password: &str) -> Result<Console, String> {
    let (h, authed) = tokio::time::timeout(t.service.timeout, login(t, user, password))
        .await
        .map_err(|_| format!("no login within {:?}", t.service.timeout))??;
    if let Authed::Out(o, d) = authed {
        return Err(format!("the login was not taken ({}): {d}", o.word()));
    }
    // the channel, its terminal and its shell within the service's timeout too: a device
    // that takes the login and then answers nothing cannot hold the run
    let within = t.service.timeout;
    let late = |what: &str| format!("no {what} within {within:?} after the login");
    let ch = tokio::time::timeout(within, h.channel_open_session())
        .await
        .map_err(|_| late("session channel"))?
        .map_err(|e| format!("no session channel: {e}"))?;
    tokio::time::timeout(within, ch.request_pty(true, "vt100", 80, 24, 0, 0, &[]))
        .await
        .map_err(|_| late("terminal"))?
        .map_err(|e| format!("no terminal: {e}"))?;
    tokio::time::timeout(within, ch.request_shell(true))
        .await
        .map_err(|_| late("shell"))?
        .map_err(|e| format!("no shell: {e}"))?;
    let feed = Feed::one_session(std::time::Instant::now());
    feed.event(format!("SSH session to {}", t.describe()), Some(true));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let fed = feed.clone();
    tokio::spawn(async move {
        // the connection lives as long as the task
        let h = h;
        let mut ch = ch;
        loop {
            tokio::select! {
                m = ch.wait() => match m {
                    Some(ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. }) => fed.rx(&data),
                    Some(ChannelMsg::Eof | ChannelMsg::Close) | None => {
                        fed.event("the SSH session ended".into(), Some(false));
                        break;
                    }
                    Some(_) => {}
                },
                w = rx.recv() => match w {
                    Some(bytes) => {
                        if !matches!(tokio::time::timeout(within, ch.data(&bytes[..])).await, Ok(Ok(()))) {
                            fed.event("the SSH session ended (the device took no more)".into(), Some(false));
                            break;
                        }
                    }
                    None => {
                        let _ = ch.close().await;
                        break;
                    }
                },
            }
        }
        let _ = h.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    });
    Ok(Console::new(feed, Arc::new(super::target::Pipe::new(tx))))
}

/// Logged in: open a shell for a moment. A demand for a new password is not access — when
/// the session then offers only the change dialog (a command typed next gets no shell's
/// answer) or ends; a reminder in front of a working shell is access.
async fn after_login(h: &mut client::Handle<AnyHostKey>, t: &Target) -> (LoginAnswer, String) {
    let opened = tokio::time::timeout(t.service.timeout, h.channel_open_session()).await;
    let Ok(Ok(mut ch)) = opened else {
        return (LoginAnswer::Accepted, "authenticated (no session channel)".into());
    };
    let _ = ch.request_pty(false, "vt100", 80, 24, 0, 0, &[]).await;
    let _ = ch.request_shell(false).await;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    let shell = t.service.prompts.as_ref().map(|p| p.shell.clone());
    let change = changes(t);
    loop {
        match tokio::time::timeout_at(deadline, ch.wait()).await {
            Ok(Some(ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. })) => {
                seen.extend_from_slice(&data);
                if change.iter().any(|c| c.is_match(&seen)) {
                    return forced_or_nag(&mut ch, seen, shell.as_ref()).await;
                }
                if shell.as_ref().is_some_and(|s| s.is_match(&seen)) || seen.len() > 16 * 1024 {
                    break;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    (LoginAnswer::Accepted, String::from_utf8_lossy(&seen).into_owned())
}

/// After the words of a password change: type a harmless command ([`super::target::ShellProbe`]);
/// a shell's answer makes the login access, a dialog or the end of the session a forced
/// change, silence decides nothing.
async fn forced_or_nag(
    ch: &mut russh::Channel<client::Msg>,
    mut seen: Vec<u8>,
    shell: Option<&regex::bytes::Regex>,
) -> (LoginAnswer, String) {
    let probe = super::target::ShellProbe::new();
    let mark = seen.len();
    if ch.data(format!("{}\r\n", probe.line).as_bytes()).await.is_err() {
        return (
            super::target::ProbeAnswer::outcome(None, true),
            String::from_utf8_lossy(&seen).into_owned(),
        );
    }
    let deadline = tokio::time::Instant::now() + super::target::PROBE_WAIT;
    let ended = loop {
        if let Some(a) = probe.read(&seen[mark..], shell) {
            let mut said = String::from_utf8_lossy(&seen).into_owned();
            if a == super::target::ProbeAnswer::Shell {
                said.push_str(
                    " [a command typed after the demand for a new password ran: a reminder, not a forced change]",
                );
            }
            return (super::target::ProbeAnswer::outcome(Some(a), false), said);
        }
        match tokio::time::timeout_at(deadline, ch.wait()).await {
            Ok(Some(ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. })) => {
                seen.extend_from_slice(&data);
                if seen.len() > 64 * 1024 {
                    break false;
                }
            }
            Ok(Some(ChannelMsg::Eof | ChannelMsg::Close | ChannelMsg::ExitStatus { .. })) | Ok(None) => break true,
            Ok(Some(_)) => {}
            Err(_) => break false,
        }
    };
    (
        super::target::ProbeAnswer::outcome(None, ended),
        String::from_utf8_lossy(&seen).into_owned(),
    )
}
