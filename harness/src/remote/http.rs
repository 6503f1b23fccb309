//! Web logins: HTTP Basic on a protected page, and an HTML form posted as
//! `application/x-www-form-urlencoded`. One request per attempt on a fresh connection.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Outcome, Target};

/// What is read of an answer: enough for a login page.
const MAX_ANSWER: usize = 64 * 1024;

fn base64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `application/x-www-form-urlencoded` for one value.
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' => "+".into(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// Sends `request`, returns the status code and the whole answer (bounded).
async fn exchange(t: &Target, request: &[u8]) -> Result<(u16, String), String> {
    let mut conn = super::connect(t).await?;
    let deadline = tokio::time::Instant::now() + t.service.timeout;
    tokio::time::timeout_at(deadline, conn.write_all(request))
        .await
        .map_err(|_| "the request was not taken".to_string())?
        .map_err(|e| format!("send: {e}"))?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Err(_) if answer.is_empty() => return Err(format!("no answer within {:?}", t.service.timeout)),
            Err(_) => break,
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.len() >= MAX_ANSWER {
                    break;
                }
            }
            Ok(Err(e)) if answer.is_empty() => return Err(format!("read: {e}")),
            Ok(Err(_)) => break,
        }
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| "the answer is not HTTP".to_string())?;
    Ok((status, text))
}

fn host_header(t: &Target) -> String {
    match t.service.host {
        std::net::IpAddr::V6(ip) => format!("[{ip}]:{}", t.port),
        ip => format!("{ip}:{}", t.port),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// HTTP Basic: 2xx is in, 401/403 is refused; anything else decides nothing.
pub async fn attempt_basic(t: &Target, user: &str, password: &str) -> (Outcome, String) {
    let cred = base64(format!("{user}:{password}").as_bytes());
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {cred}\r\nUser-Agent: certbench\r\nConnection: close\r\n\r\n",
        t.service.path,
        host_header(t)
    );
    match exchange(t, req.as_bytes()).await {
        Err(e) => (Outcome::Unanswered(e.clone()), e),
        Ok((s, text)) => {
            let outcome = match s {
                200..=299 => Outcome::Accepted,
                401 | 403 => Outcome::Rejected,
                s => Outcome::Unanswered(format!("HTTP {s} decides nothing about the login")),
            };
            (outcome, first_line(&text))
        }
    }
}

/// An HTML form: the profile's `success` / `failure` patterns read the answer (status
/// line, headers and body). Both matching, or neither, decides nothing.
pub async fn attempt_form(t: &Target, user: &str, password: &str) -> (Outcome, String) {
    let s = &t.service;
    let body = format!(
        "{}={}&{}={}",
        form_encode(&s.user_field),
        form_encode(user),
        form_encode(&s.password_field),
        form_encode(password)
    );
    let req = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nUser-Agent: certbench\r\nConnection: close\r\n\r\n{body}",
        s.path,
        host_header(t),
        body.len()
    );
    match exchange(t, req.as_bytes()).await {
        Err(e) => (Outcome::Unanswered(e.clone()), e),
        Ok((_, text)) => {
            let ok = s.success.as_ref().is_some_and(|r| r.is_match(text.as_bytes()));
            let no = s.failure.as_ref().is_some_and(|r| r.is_match(text.as_bytes()));
            let outcome = match (ok, no) {
                (true, false) => Outcome::Accepted,
                (false, true) => Outcome::Rejected,
                (true, true) => {
                    Outcome::Unanswered("the answer matches both the success and the failure pattern".into())
                }
                (false, false) => {
                    Outcome::Unanswered("the answer matches neither the success nor the failure pattern".into())
                }
            };
            (outcome, first_line(&text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_form_encoding() {
        assert_eq!(base64(b"admin:admin"), "YWRtaW46YWRtaW4=");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b""), "");
        assert_eq!(form_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }
}
