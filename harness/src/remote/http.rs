//! Web logins: HTTP Basic and Digest (RFC 7616) on a protected page, and an HTML form
//! posted as `application/x-www-form-urlencoded`. One request per attempt on a fresh
//! connection (Digest: two, the first fetching the challenge).

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::target::{LoginAnswer, Target};
use crate::util::{base64, form_encode};

/// What is read of an answer: enough for a login page.
const MAX_ANSWER: usize = 64 * 1024;

/// Sends `request`, returns the status code and the whole answer (bounded).
async fn exchange(t: &Target, request: &[u8]) -> Result<(u16, String), String> {
    let (status, answer) = exchange_bytes(t, request).await?;
    Ok((status, String::from_utf8_lossy(&answer).into_owned()))
}

/// As [`exchange`], the answer's bytes as they came.
async fn exchange_bytes(t: &Target, request: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let mut conn = super::target::connect(t).await?;
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
    let status = answer
        .strip_prefix(b"HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| "the answer is not HTTP".to_string())?;
    Ok((status, answer))
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
pub async fn attempt_basic(t: &Target, user: &str, password: &str) -> (LoginAnswer, String) {
    let cred = base64(format!("{user}:{password}").as_bytes());
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {cred}\r\nUser-Agent: certbench\r\nConnection: close\r\n\r\n",
        t.service.path,
        host_header(t)
    );
    match exchange(t, req.as_bytes()).await {
        Err(e) => (LoginAnswer::Unanswered(e.clone()), e),
        Ok((s, text)) => {
            let outcome = match s {
                200..=299 => LoginAnswer::Accepted,
                401 | 403 => LoginAnswer::Rejected,
                s => LoginAnswer::Unanswered(format!("HTTP {s} decides nothing about the login")),
            };
            (outcome, first_line(&text))
        }
    }
}

/// The values of every `WWW-Authenticate` header of an answer.
fn challenges_of(answer: &str) -> Vec<String> {
    answer
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .lines()
        .filter_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("www-authenticate")
                .then(|| value.trim().to_string())
        })
        .collect()
}

/// One challenge: its scheme and parameters (names lower-cased).
#[derive(Debug, Default, PartialEq)]
struct Challenge {
    scheme: String,
    params: Vec<(String, String)>,
}

impl Challenge {
    fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Parses `WWW-Authenticate` values (RFC 9110 11.6.1): several challenges may share one
/// header, each a scheme followed by `name=value` pairs (tokens or quoted strings).
fn parse_challenges(values: &[String]) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    for v in values {
        let b = v.as_bytes();
        let mut i = 0;
        let token_end = |mut j: usize| {
            while j < b.len() && !matches!(b[j], b' ' | b'\t' | b',' | b'=') {
                j += 1;
            }
            j
        };
        loop {
            while i < b.len() && matches!(b[i], b' ' | b'\t' | b',') {
                i += 1;
            }
            if i >= b.len() {
                break;
            }
            let end = token_end(i);
            let word = &v[i..end];
            let mut j = end;
            while j < b.len() && matches!(b[j], b' ' | b'\t') {
                j += 1;
            }
            // `name=value` (not `token68==`): a parameter of the current challenge
            if j < b.len() && b[j] == b'=' && !word.is_empty() && out.last().is_some() {
                j += 1;
                while j < b.len() && matches!(b[j], b' ' | b'\t') {
                    j += 1;
                }
                let value = if j < b.len() && b[j] == b'"' {
                    let mut val = String::new();
                    j += 1;
                    while j < b.len() && b[j] != b'"' {
                        if b[j] == b'\\' && j + 1 < b.len() {
                            j += 1;
                        }
                        val.push(b[j] as char);
                        j += 1;
                    }
                    j += 1;
                    val
                } else {
                    let e = token_end(j);
                    let val = v[j..e].to_string();
                    j = e;
                    val
                };
                if let Some(c) = out.last_mut() {
                    c.params.push((word.to_ascii_lowercase(), value));
                }
                i = j;
            } else if word.is_empty() {
                i = j + 1;
            } else {
                out.push(Challenge {
                    scheme: word.to_ascii_lowercase(),
                    params: Vec::new(),
                });
                i = end;
            }
        }
    }
    out
}

/// The Digest algorithms certbench answers, strongest first.
const DIGEST_ALGORITHMS: [&str; 4] = ["SHA-256", "SHA-256-sess", "MD5", "MD5-sess"];

fn digest_hash(algorithm: &str, data: &str) -> String {
    if algorithm.starts_with("SHA-256") {
        crate::util::sha256_hex(data.as_bytes())
    } else {
        format!("{:x}", md5::compute(data.as_bytes()))
    }
}

/// The `Authorization: Digest` value for one challenge (RFC 7616 3.4), `qop=auth` when
/// the server offers it, else the RFC 2069 form.
fn digest_authorization(
    c: &Challenge,
    algorithm: &str,
    user: &str,
    password: &str,
    uri: &str,
    cnonce: &str,
) -> Result<String, String> {
    let realm = c.get("realm").unwrap_or("");
    let nonce = c.get("nonce").ok_or("the Digest challenge has no nonce")?;
    let qop = match c.get("qop") {
        None => None,
        Some(q) if q.split(',').any(|o| o.trim() == "auth") => Some("auth"),
        Some(q) => return Err(format!("the Digest challenge offers qop {q:?}, not auth")),
    };
    let nc = "00000001";
    let mut ha1 = digest_hash(algorithm, &format!("{user}:{realm}:{password}"));
    if algorithm.ends_with("-sess") {
        ha1 = digest_hash(algorithm, &format!("{ha1}:{nonce}:{cnonce}"));
    }
    let ha2 = digest_hash(algorithm, &format!("GET:{uri}"));
    let response = match qop {
        Some(q) => digest_hash(algorithm, &format!("{ha1}:{nonce}:{nc}:{cnonce}:{q}:{ha2}")),
        None => digest_hash(algorithm, &format!("{ha1}:{nonce}:{ha2}")),
    };
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut h = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", algorithm={algorithm}, response=\"{response}\"",
        quote(user),
        quote(realm),
        quote(nonce),
        quote(uri)
    );
    if let Some(q) = qop {
        h.push_str(&format!(", qop={q}, nc={nc}, cnonce=\"{cnonce}\""));
    }
    if let Some(o) = c.get("opaque") {
        h.push_str(&format!(", opaque=\"{}\"", quote(o)));
    }
    Ok(h)
}

/// HTTP Digest: fetches the challenge, answers the strongest algorithm offered (SHA-256
/// before MD5); 2xx is in, 401/403 is refused. A page that needs no login at all is in
/// with any password.
pub async fn attempt_digest(t: &Target, user: &str, password: &str) -> (LoginAnswer, String) {
    let get = |auth: Option<&str>| {
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\n{}User-Agent: certbench\r\nConnection: close\r\n\r\n",
            t.service.path,
            host_header(t),
            auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default()
        )
    };
    let mut stale_retry = true;
    loop {
        let (status, text) = match exchange(t, get(None).as_bytes()).await {
            Err(e) => return (LoginAnswer::Unanswered(e.clone()), e),
            Ok(a) => a,
        };
        if (200..300).contains(&status) {
            return (
                LoginAnswer::Accepted,
                format!("{} (without credentials)", first_line(&text)),
            );
        }
        if status != 401 {
            let d = format!("HTTP {status} to a request without credentials, not a Digest challenge");
            return (LoginAnswer::Unanswered(d.clone()), d);
        }
        let all = parse_challenges(&challenges_of(&text));
        let pick = DIGEST_ALGORITHMS.iter().find_map(|a| {
            all.iter()
                .filter(|c| c.scheme == "digest")
                .find(|c| c.get("algorithm").unwrap_or("MD5").eq_ignore_ascii_case(a))
                .map(|c| (c, *a))
        });
        let Some((c, algorithm)) = pick else {
            let offered: Vec<String> = all
                .iter()
                .map(|c| {
                    format!("{} {}", c.scheme, c.get("algorithm").unwrap_or(""))
                        .trim()
                        .to_string()
                })
                .collect();
            let d = format!(
                "no Digest challenge certbench can answer (offered: {})",
                offered.join("; ")
            );
            return (LoginAnswer::Unanswered(d.clone()), d);
        };
        let cnonce = format!("{:016x}", rand::random::<u64>());
        let auth = match digest_authorization(c, algorithm, user, password, &t.service.path, &cnonce) {
            Ok(a) => a,
            Err(e) => return (LoginAnswer::Unanswered(e.clone()), e),
        };
        let (status, text) = match exchange(t, get(Some(&auth)).as_bytes()).await {
            Err(e) => return (LoginAnswer::Unanswered(e.clone()), e),
            Ok(a) => a,
        };
        let detail = format!("{} ({algorithm})", first_line(&text));
        let stale = parse_challenges(&challenges_of(&text))
            .iter()
            .any(|c| c.scheme == "digest" && c.get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")));
        return match status {
            200..=299 => (LoginAnswer::Accepted, detail),
            // a nonce that expired between the two requests says nothing of the password
            401 if stale && stale_retry => {
                stale_retry = false;
                continue;
            }
            401 | 403 => (LoginAnswer::Rejected, detail),
            s => (
                LoginAnswer::Unanswered(format!("HTTP {s} decides nothing about the login")),
                detail,
            ),
        };
    }
}

/// An HTML form: the profile's `success` / `failure` patterns read the answer (status
/// line, headers and body). Both matching, or neither, decides nothing.
/// Logs in through the form and returns the session cookies the answer set (`name=value`
/// each), for a browser's next requests. Err unless the login worked and set a cookie.
pub async fn form_session(t: &Target, user: &str, password: &str) -> Result<Vec<String>, String> {
    let (outcome, text) = form_login(t, user, password).await;
    if outcome != LoginAnswer::Accepted {
        return Err(format!("the login was not taken ({})", outcome.word()));
    }
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let cookies: Vec<String> = head
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("set-cookie")
                .then(|| v.trim().split(';').next().unwrap_or("").trim().to_string())
        })
        .filter(|c| c.contains('='))
        .collect();
    if cookies.is_empty() {
        return Err("the login set no cookie: there is no session to follow".into());
    }
    Ok(cookies)
}

/// Whether the session `cookies` open still opens the declared session page: a 2xx answer
/// that matches its `alive` pattern. Ok(false) with what the device answered otherwise.
pub async fn session_alive(t: &Target, cookies: &[String]) -> Result<(bool, String), String> {
    let Some(ws) = &t.service.session else {
        return Err("the service declares no session page".into());
    };
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nUser-Agent: certbench\r\nConnection: close\r\n\r\n",
        ws.path,
        host_header(t),
        cookies.join("; ")
    );
    let (status, text) = exchange(t, req.as_bytes()).await?;
    let alive = (200..300).contains(&status) && ws.alive.is_match(text.as_bytes());
    // the device's words, bounded and escaped (redacted where they are kept)
    Ok((alive, super::target::printable(&first_line(&text), 160)))
}

/// One request on a fresh connection (`headers`: extra header lines, each ending in CRLF):
/// the status and the answer's first line, printable.
pub async fn request(
    t: &Target,
    method: &str,
    path: &str,
    headers: &str,
    content_type: &str,
    body: &str,
) -> Result<(u16, String), String> {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\n{headers}Content-Type: {content_type}\r\nContent-Length: {}\r\nUser-Agent: certbench\r\nConnection: close\r\n\r\n{body}",
        host_header(t),
        body.len()
    );
    let (status, text) = exchange(t, req.as_bytes()).await?;
    Ok((status, super::target::printable(&first_line(&text), 160)))
}

/// A GET without credentials on a fresh connection: the status and the whole answer.
async fn get_page(t: &Target, path: &str) -> Result<(u16, String), String> {
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: certbench\r\nConnection: close\r\n\r\n",
        host_header(t)
    );
    exchange(t, req.as_bytes()).await
}

/// A GET without credentials: the status and the body (Content-Length or chunked
/// transfer decoded; at most 64 KiB of answer read).
pub async fn fetch(t: &Target, path: &str) -> Result<(u16, Vec<u8>), String> {
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: certbench\r\nConnection: close\r\n\r\n",
        host_header(t)
    );
    let (status, raw) = exchange_bytes(t, req.as_bytes()).await?;
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err("the answer has no end of headers".into());
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let body = &raw[end + 4..];
    let chunked = head
        .lines()
        .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
    Ok((status, if chunked { dechunk(body) } else { body.to_vec() }))
}

/// A chunked body's data (what arrived of it).
fn dechunk(mut d: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = d.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&d[..eol]);
        let Ok(n) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16) else {
            break;
        };
        if n == 0 {
            break;
        }
        let start = eol + 2;
        let end = (start + n).min(d.len());
        out.extend_from_slice(&d[start..end]);
        d = d.get(end + 2..).unwrap_or_default();
    }
    out
}

/// HTTP Digest: the status of a request for the protected page without credentials and the
/// algorithms its Digest challenges offer (a challenge naming none is MD5, RFC 7616 3.3).
pub async fn digest_offer(t: &Target) -> Result<(u16, Vec<String>), String> {
    let (status, text) = get_page(t, &t.service.path).await?;
    let offered = parse_challenges(&challenges_of(&text))
        .iter()
        .filter(|c| c.scheme == "digest")
        .map(|c| super::target::printable(c.get("algorithm").unwrap_or("MD5"), 40))
        .collect();
    Ok((status, offered))
}

/// Whether a Digest algorithm is MD5 (with or without `-sess`).
pub fn is_md5(algorithm: &str) -> bool {
    algorithm.eq_ignore_ascii_case("MD5") || algorithm.eq_ignore_ascii_case("MD5-sess")
}

/// The status of `page` (GET, no credentials) and the `action` of every HTML form on it,
/// as written (printable, bounded); a form without one posts back to the page.
pub async fn form_actions(t: &Target, page: &str) -> Result<(u16, Vec<String>), String> {
    let (status, text) = get_page(t, page).await?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((
        status,
        form_actions_of(body)
            .into_iter()
            .map(|a| super::target::printable(&a, 160))
            .collect(),
    ))
}

/// The `action` attribute of each `<form>` tag of an HTML text ("" when it has none).
fn form_actions_of(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = lower[at..].find("<form") {
        let start = at + i + 5;
        let end = lower[start..].find('>').map_or(lower.len(), |e| start + e);
        at = end;
        if !lower[start..].starts_with(|c: char| c.is_ascii_whitespace() || c == '>') {
            continue; // <formfoo>, not a form
        }
        out.push(attribute(&html[start..end], &lower[start..end], "action").unwrap_or_default());
    }
    out
}

/// An attribute's value in a tag's inside (`lower` is the same text in lower case).
fn attribute(tag: &str, lower: &str, name: &str) -> Option<String> {
    let b = lower.as_bytes();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name) {
        let i = from + i;
        from = i + name.len();
        let before_ok = i == 0 || b[i - 1].is_ascii_whitespace();
        let rest = lower[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let v = from + (lower[from..].len() - rest.len()) + 1;
        let v = v + (lower[v..].len() - lower[v..].trim_start().len());
        let value = match tag[v..].chars().next() {
            Some(q @ ('"' | '\'')) => tag[v + 1..].split(q).next().unwrap_or(""),
            _ => tag[v..].split(|c: char| c.is_ascii_whitespace()).next().unwrap_or(""),
        };
        return Some(value.to_string());
    }
    None
}

/// The `Authorization` header line of HTTP Basic.
pub fn basic_header(user: &str, password: &str) -> String {
    format!(
        "Authorization: Basic {}\r\n",
        base64(format!("{user}:{password}").as_bytes())
    )
}

pub async fn attempt_form(t: &Target, user: &str, password: &str) -> (LoginAnswer, String) {
    let (outcome, text) = form_login(t, user, password).await;
    (outcome, first_line(&text))
}

/// Posts the login form; the outcome and the whole answer.
async fn form_login(t: &Target, user: &str, password: &str) -> (LoginAnswer, String) {
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
        Err(e) => (LoginAnswer::Unanswered(e.clone()), e),
        Ok((_, text)) => {
            let ok = s.success.as_ref().is_some_and(|r| r.is_match(text.as_bytes()));
            let no = s.failure.as_ref().is_some_and(|r| r.is_match(text.as_bytes()));
            let outcome = match (ok, no) {
                (true, false) => LoginAnswer::Accepted,
                (false, true) => LoginAnswer::Rejected,
                (true, true) => {
                    LoginAnswer::Unanswered("the answer matches both the success and the failure pattern".into())
                }
                (false, false) => {
                    LoginAnswer::Unanswered("the answer matches neither the success nor the failure pattern".into())
                }
            };
            (outcome, text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_decoded() {
        assert_eq!(dechunk(b"5\r\nhello\r\n7;x=y\r\n, world\r\n0\r\n\r\n"), b"hello, world");
        assert_eq!(dechunk(b"5\r\nhel"), b"hel");
    }

    fn challenge(v: &str) -> Vec<Challenge> {
        parse_challenges(&[v.to_string()])
    }

    #[test]
    fn challenges_are_parsed_with_quoted_strings_and_several_per_header() {
        let all = challenge(
            r#"Basic realm="a, b", Digest realm="Device \"Admin\"", nonce=abc, qop="auth,auth-int", algorithm=SHA-256"#,
        );
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(all[0].scheme, "basic");
        assert_eq!(all[0].get("realm"), Some("a, b"));
        assert_eq!(all[1].scheme, "digest");
        assert_eq!(all[1].get("realm"), Some("Device \"Admin\""));
        assert_eq!(all[1].get("nonce"), Some("abc"));
        assert_eq!(all[1].get("qop"), Some("auth,auth-int"));
        assert_eq!(all[1].get("algorithm"), Some("SHA-256"));
        let headers = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"r\", nonce=\"n\"\r\nwww-authenticate: Basic realm=\"r\"\r\n\r\nWWW-Authenticate: body";
        assert_eq!(challenges_of(headers).len(), 2);
        assert!(challenge("").is_empty());
        assert!(challenge(", , =").is_empty());
    }

    /// The worked examples of RFC 2617 3.5 and RFC 7616 3.9.1.
    #[test]
    fn digest_responses_match_the_rfc_examples() {
        let c = challenge(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        );
        let h = digest_authorization(&c[0], "MD5", "Mufasa", "Circle Of Life", "/dir/index.html", "0a4f113b")
            .expect("answerable");
        assert!(h.contains(r#"response="6629fae49393a05397450978507c4ef1""#), "{h}");
        assert!(h.contains(r#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#), "{h}");
        let c = challenge(
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
        );
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let h = digest_authorization(&c[0], "SHA-256", "Mufasa", "Circle of Life", "/dir/index.html", cnonce)
            .expect("answerable");
        assert!(
            h.contains(r#"response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1""#),
            "{h}"
        );
        let h = digest_authorization(&c[0], "MD5", "Mufasa", "Circle of Life", "/dir/index.html", cnonce)
            .expect("answerable");
        assert!(h.contains(r#"response="8ca523f5e9506fed4657c9700eebdbec""#), "{h}");
        // only auth-int offered: not answerable, said so
        let c = challenge(r#"Digest realm="r", nonce="n", qop="auth-int""#);
        assert!(digest_authorization(&c[0], "MD5", "u", "p", "/", "c").is_err());
    }

    #[test]
    fn form_actions_are_read_from_each_form_tag() {
        let html = r#"<html><FORM method=post Action="http://10.0.0.1/login"><input name=a></form>
            <formula>x</formula><form class='x' action = '/l?a=1' ><form id=f data-action=x action=https://h/p>
            <form>"#;
        assert_eq!(
            form_actions_of(html),
            ["http://10.0.0.1/login", "/l?a=1", "https://h/p", ""]
        );
        assert!(form_actions_of("no forms here").is_empty());
        assert!(is_md5("md5") && is_md5("MD5-sess") && !is_md5("SHA-256"));
    }

    #[test]
    fn base64_and_form_encoding() {
        assert_eq!(base64(b"admin:admin"), "YWRtaW46YWRtaW4=");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b""), "");
        assert_eq!(form_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }
}
