//! What a service says about itself before anyone logs in: an SSH or FTP greeting, a
//! telnet banner, an HTTP server's `Server` and `X-Powered-By` headers. Read for version
//! strings (VUL-01..03: the running device as a source of what it ships); words only, never
//! a verdict by themselves.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::target::{Target, connect};
use crate::config::services::ServiceKind;

const MAX: usize = 8 << 10;

/// The banner, as the service sent it (at most 8 KiB; HTTP: the response's header block).
pub async fn banner(t: &Target, within: Duration) -> Result<String, String> {
    let work = async {
        let mut s = connect(t).await?;
        let http = matches!(
            t.service.kind,
            ServiceKind::HttpBasic | ServiceKind::HttpDigest | ServiceKind::HttpForm
        );
        if http {
            let req = format!(
                "HEAD / HTTP/1.1\r\nHost: {}\r\nUser-Agent: certbench\r\nConnection: close\r\n\r\n",
                t.addr()
            );
            s.write_all(req.as_bytes()).await.map_err(|e| format!("write: {e}"))?;
        }
        let mut buf = Vec::new();
        let mut chunk = [0u8; 2048];
        loop {
            let n = match tokio::time::timeout(Duration::from_millis(1500), s.read(&mut chunk)).await {
                Ok(Ok(n)) => n,
                Ok(Err(e)) if buf.is_empty() => return Err(format!("read: {e}")),
                // what came before a reset or a pause is the banner
                _ => break,
            };
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            let end = if http { b"\r\n\r\n".as_slice() } else { b"\n".as_slice() };
            if buf.len() >= MAX || buf.windows(end.len()).any(|w| w == end) {
                break;
            }
        }
        buf.truncate(MAX);
        let text = String::from_utf8_lossy(&buf).to_string();
        if !http {
            return Ok(text);
        }
        // only what names the software: the status line and the rest are not the server's word
        Ok(text
            .lines()
            .filter(|l| {
                let l = l.to_ascii_lowercase();
                l.starts_with("server:") || l.starts_with("x-powered-by:")
            })
            .collect::<Vec<_>>()
            .join("\n"))
    };
    tokio::time::timeout(within, work)
        .await
        .map_err(|_| format!("no banner within {within:?}"))?
}
