//! FTP logins (RFC 959): `USER`, then `PASS`. 230 is in, 530 is refused; with `tls` the
//! whole session is in TLS from the first byte (implicit FTPS, port 990).

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::target::{LoginAnswer, Target};

/// What is read of one reply, at most: a greeting or a refusal is a few lines.
const MAX_REPLY: usize = 16 * 1024;

/// One complete reply: its code and text. A multi-line reply (`123-` … `123 `) ends at
/// the line that repeats its code followed by a space.
fn complete_reply(buf: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(buf);
    let mut lines = text.split_inclusive('\n');
    let first = lines.next()?;
    if !first.ends_with('\n') {
        return None;
    }
    let code: u16 = first.get(..3)?.parse().ok()?;
    if first.as_bytes().get(3) != Some(&b'-') {
        return Some((code, first.trim_end().to_string()));
    }
    let end = format!("{code} ");
    let mut whole = first.to_string();
    for l in lines {
        if !l.ends_with('\n') {
            return None;
        }
        whole.push_str(l);
        if l.starts_with(&end) {
            return Some((code, whole.trim_end().to_string()));
        }
    }
    None
}

/// Reads one reply within the service's timeout.
async fn reply(conn: &mut (impl tokio::io::AsyncRead + Unpin), t: &Target) -> Result<(u16, String), String> {
    let deadline = tokio::time::Instant::now() + t.service.timeout;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(r) = complete_reply(&buf) {
            return Ok(r);
        }
        if buf.len() > MAX_REPLY {
            return Err("a reply longer than 16 KiB".into());
        }
        match tokio::time::timeout_at(deadline, conn.read(&mut chunk)).await {
            Err(_) => return Err(format!("no complete reply within {:?}", t.service.timeout)),
            Ok(Ok(0)) => return Err("the connection closed before a complete reply".into()),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => return Err(format!("read: {e}")),
        }
    }
}

async fn send(conn: &mut (impl tokio::io::AsyncWrite + Unpin), line: &str) -> Result<(), String> {
    conn.write_all(line.as_bytes()).await.map_err(|e| format!("send: {e}"))
}

/// User names and passwords must not carry a line break into the command stream.
fn one_line(s: &str) -> bool {
    !s.contains(['\r', '\n'])
}

pub async fn attempt(t: &Target, user: &str, password: &str) -> (LoginAnswer, String) {
    if !one_line(user) || !one_line(password) {
        let d = "a user name or password with a line break cannot be sent over FTP".to_string();
        return (LoginAnswer::Unanswered(d.clone()), d);
    }
    let mut conn = match super::target::connect(t).await {
        Ok(c) => c,
        Err(e) => return (LoginAnswer::Unanswered(e.clone()), e),
    };
    let r = async {
        let (code, greeting) = reply(&mut conn, t).await?;
        if code != 220 {
            return Ok((
                LoginAnswer::Unanswered(format!("greeting {code}, not 220: no login possible now")),
                greeting,
            ));
        }
        send(&mut conn, &format!("USER {user}\r\n")).await?;
        let (code, text) = reply(&mut conn, t).await?;
        match code {
            // in without a password
            230 => return Ok((LoginAnswer::Accepted, format!("{text} (after USER, no password asked)"))),
            530 => return Ok((LoginAnswer::Rejected, text)),
            331 | 332 => {}
            c => return Ok((LoginAnswer::Unanswered(format!("{c} to USER decides nothing")), text)),
        }
        send(&mut conn, &format!("PASS {password}\r\n")).await?;
        let (code, text) = reply(&mut conn, t).await?;
        let outcome = match code {
            230 | 202 => LoginAnswer::Accepted,
            530 => LoginAnswer::Rejected,
            c => LoginAnswer::Unanswered(format!("{c} to PASS decides nothing")),
        };
        let _ = send(&mut conn, "QUIT\r\n").await;
        Ok::<_, String>((outcome, text))
    }
    .await;
    r.unwrap_or_else(|e| (LoginAnswer::Unanswered(e.clone()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_single_and_multi_line() {
        assert_eq!(complete_reply(b"220 ready\r\n"), Some((220, "220 ready".into())));
        assert_eq!(complete_reply(b"220 rea"), None);
        assert_eq!(complete_reply(b"220-Welcome\r\n"), None);
        assert_eq!(complete_reply(b"220-Welcome\r\n 220 not the end\r\n"), None);
        assert_eq!(
            complete_reply(b"220-Welcome\r\nsecond\r\n220 ready\r\n"),
            Some((220, "220-Welcome\r\nsecond\r\n220 ready".into()))
        );
        assert_eq!(complete_reply(b"hello\r\n"), None);
        assert!(one_line("admin") && !one_line("a\r\nDELE x"));
    }
}
