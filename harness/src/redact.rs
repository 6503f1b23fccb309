//! Secrets never reach an output: every known secret value is replaced by its name in
//! transcripts, excerpts, reasons and logs.

use std::sync::{Arc, RwLock};

use rand::Rng;

/// `"text"` -> `text`.
fn unquote(s: &str) -> String {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
        .to_string()
}

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<Vec<(String, String)>>>,
    /// (name, raw value, a form it takes in output or on the wire: see [`forms`]).
    forms: Arc<RwLock<Vec<(String, String, String)>>>,
    /// Identifiers of the run that are public (the user name): a secret equal to one is
    /// not blanked out of every transcript line (that would make "admin" unreadable
    /// everywhere and hide nothing), only where certbench enters it as a secret.
    public: Arc<RwLock<Vec<String>>>,
}

/// Shorter values are not redacted: they would blank out ordinary words.
const MIN_SECRET_LEN: usize = 3;
/// A derived form (a base64 fragment) shorter than this is not searched: it would match
/// ordinary text by chance.
const MIN_DERIVED_LEN: usize = 6;
/// A secret cut at the edge of a window is redacted when at least this much of it shows.
pub const MIN_PARTIAL: usize = 6;

/// Every form a secret takes in what certbench writes or sends, so that one place knows
/// them all: as typed; JSON- and debug-escaped (outputs escaped before redaction); hex and
/// UTF-16LE (as a device may send it);
/// percent- and form-encoded (certbench's form logins); base64 — whole `user:secret`
/// tokens for each public user (certbench's HTTP Basic logins) and the fragments the
/// secret leaves at each of the three base64 alignments wherever else it is encoded.
pub fn forms(value: &str, users: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |f: String, min: usize| {
        if f.len() >= min && !out.contains(&f) {
            out.push(f);
        }
    };
    push(value.to_string(), 1);
    push(unquote(&serde_json::to_string(value).unwrap_or_default()), 1);
    push(unquote(&format!("{value:?}")), 1);
    push(crate::util::form_encode(value), 1);
    push(crate::util::form_encode(value).replace('+', "%20"), 1);
    for u in users {
        push(crate::util::base64(format!("{u}:{value}").as_bytes()), 1);
    }
    for f in crate::util::base64_fragments(value.as_bytes()) {
        push(f, MIN_DERIVED_LEN);
    }
    // forms a device puts on the wire (the canary search finds them; the stored capture
    // masks them): hex (either case, the mask ignores case) of a value of 8 or more
    // characters, and UTF-16LE
    push(value.bytes().map(|b| format!("{b:02x}")).collect(), 16);
    push(
        String::from_utf8(value.encode_utf16().flat_map(u16::to_le_bytes).collect()).unwrap_or_default(),
        MIN_DERIVED_LEN,
    );
    out
}

impl Redactor {
    pub fn add(&self, name: &str, value: &str) {
        if value.len() < MIN_SECRET_LEN {
            return;
        }
        let mut g = self.secrets.write().unwrap_or_else(|p| p.into_inner());
        if !g.iter().any(|(_, v)| v == value) {
            g.push((name.to_string(), value.to_string()));
            g.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        }
        drop(g);
        let users = self.public.read().unwrap_or_else(|p| p.into_inner()).clone();
        self.add_forms(name, value, &users);
    }

    fn add_forms(&self, name: &str, value: &str, users: &[String]) {
        let mut f = self.forms.write().unwrap_or_else(|p| p.into_inner());
        for form in forms(value, users) {
            if !f.iter().any(|(_, r, v)| v == &form && r == value) {
                f.push((name.to_string(), value.to_string(), form));
            }
        }
        f.sort_by_key(|(_, _, v)| std::cmp::Reverse(v.len()));
    }

    /// Marks a value as a public identifier of the run (e.g. the login user name).
    pub fn add_public(&self, value: &str) {
        let mut g = self.public.write().unwrap_or_else(|p| p.into_inner());
        if !g.iter().any(|v| v == value) {
            g.push(value.to_string());
        }
        let users = g.clone();
        drop(g);
        // the Basic tokens of this user with every secret known so far
        for (name, v) in self.secrets() {
            self.add_forms(&name, &v, &users);
        }
    }

    /// Secrets whose value equals a public identifier: (secret name, the value).
    pub fn public_secrets(&self) -> Vec<(String, String)> {
        let public = self.public.read().unwrap_or_else(|p| p.into_inner());
        self.secrets().into_iter().filter(|(_, v)| public.contains(v)).collect()
    }

    /// How text certbench sends is shown: a whole secret by its name (even one equal to
    /// a public identifier: here it is entered as a password), anything else redacted.
    pub fn shown_send(&self, text: &str) -> String {
        let g = self.secrets.read().unwrap_or_else(|p| p.into_inner());
        match g.iter().find(|(_, v)| v == text) {
            Some((name, _)) => format!("<secret:{name}>"),
            None => {
                drop(g);
                self.redact(text)
            }
        }
    }

    /// The secrets known so far, by name (for searching memory dumps; never printed).
    pub fn secrets(&self) -> Vec<(String, String)> {
        self.secrets.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn redact(&self, s: &str) -> String {
        String::from_utf8(self.redact_bytes(s.as_bytes()))
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Every secret (in every form it takes) overwritten with `*` of the same length, in
    /// place: for raw records whose layout must not move (packets of a capture). Public
    /// identifiers are masked too: in a packet a password equal to the user name is still a
    /// password. Letters match in either case (a name server lower-cases what it is asked).
    pub fn mask_bytes(&self, b: &mut [u8]) -> usize {
        let all = self.forms.read().unwrap_or_else(|p| p.into_inner());
        let mut masked = 0;
        for (_, _, form) in all.iter() {
            let f = form.as_bytes();
            if f.is_empty() || f.len() > b.len() {
                continue;
            }
            let mut i = 0;
            while i + f.len() <= b.len() {
                if b[i..i + f.len()].eq_ignore_ascii_case(f) {
                    b[i..i + f.len()].fill(b'*');
                    masked += 1;
                    i += f.len();
                } else {
                    i += 1;
                }
            }
        }
        masked
    }

    /// One pass, longest secret first at each position, so a replacement is never
    /// itself searched again.
    pub fn redact_bytes(&self, b: &[u8]) -> Vec<u8> {
        self.redact_with(b, &[])
    }

    /// As [`Self::redact_bytes`], with `extra` (name, value) pairs treated as secrets for
    /// this text only (a guess certbench just typed, which a device may echo).
    pub fn redact_with(&self, b: &[u8], extra: &[(&str, &str)]) -> Vec<u8> {
        let all = self.forms.read().unwrap_or_else(|p| p.into_inner());
        let public = self.public.read().unwrap_or_else(|p| p.into_inner());
        let mut g: Vec<(String, String)> = all
            .iter()
            .filter(|(_, raw, _)| !public.contains(raw))
            .map(|(n, _, form)| (n.clone(), form.clone()))
            .collect();
        for (n, v) in extra.iter().filter(|(_, v)| v.len() >= MIN_SECRET_LEN) {
            g.extend(forms(v, &public).into_iter().map(|f| (n.to_string(), f)));
        }
        g.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        if g.is_empty() {
            return b.to_vec();
        }
        // the bytes a secret can start with, in either case: every other position is copied
        // without trying each secret there (transcripts are long, secrets few)
        let mut starts = [false; 256];
        for f in g.iter().filter_map(|(_, v)| v.as_bytes().first()) {
            starts[usize::from(f.to_ascii_lowercase())] = true;
            starts[usize::from(f.to_ascii_uppercase())] = true;
        }
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        'outer: while i < b.len() {
            if !starts[usize::from(b[i])] {
                out.push(b[i]);
                i += 1;
                continue;
            }
            for (name, v) in g.iter() {
                if let Some(end) = match_visible(b, i, v.as_bytes()) {
                    out.extend_from_slice(format!("<secret:{name}>").as_bytes());
                    i = end;
                    continue 'outer;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        out
    }

    /// Bytes some source already cut out of a longer stream (an evidence window, a packet's
    /// head), made safe before they are escaped or shortened: every whole secret replaced by
    /// its name, and a secret cut at either edge of the window — at least [`MIN_PARTIAL`]
    /// characters of its end at the start, or of its start at the end — replaced by
    /// `<secret:NAME…>`. The caller escapes and shortens the result, never the other way
    /// round (an escape between a secret's letters, or a cut through it, hides it from the
    /// match while a reader still sees most of it).
    pub fn redact_window(&self, raw: &[u8], extra: &[(&str, &str)]) -> Vec<u8> {
        let mut secrets: Vec<(String, String)> = self
            .secrets()
            .into_iter()
            .filter(|(_, v)| v.len() > MIN_PARTIAL)
            .collect();
        secrets.extend(
            extra
                .iter()
                .filter(|(_, v)| v.len() > MIN_PARTIAL)
                .map(|(n, v)| (n.to_string(), v.to_string())),
        );
        let mut head_cut = 0;
        let mut tail_cut = raw.len();
        let mut head_name = None;
        let mut tail_name = None;
        for (name, v) in &secrets {
            let v = v.as_bytes();
            // the window starts inside the secret: a suffix of it opens the window
            for k in (MIN_PARTIAL..v.len()).rev() {
                if raw.len() >= k && raw[..k].eq_ignore_ascii_case(&v[v.len() - k..]) {
                    if k > head_cut {
                        head_cut = k;
                        head_name = Some(name.clone());
                    }
                    break;
                }
            }
            // the window ends inside the secret: a prefix of it closes the window
            for k in (MIN_PARTIAL..v.len()).rev() {
                if raw.len() >= k && raw[raw.len() - k..].eq_ignore_ascii_case(&v[..k]) {
                    if raw.len() - k < tail_cut {
                        tail_cut = raw.len() - k;
                        tail_name = Some(name.clone());
                    }
                    break;
                }
            }
        }
        let mut out = Vec::with_capacity(raw.len());
        if let Some(n) = &head_name {
            out.extend_from_slice(format!("<secret:{n}…>").as_bytes());
        }
        if head_cut < tail_cut {
            out.extend_from_slice(&self.redact_with(&raw[head_cut..tail_cut], extra));
        }
        if let Some(n) = &tail_name {
            out.extend_from_slice(format!("<secret:{n}…>").as_bytes());
        }
        out
    }
}

/// Whether `secret` starts at `b[i]` as a terminal would show it: between its characters
/// the bytes may hold what a terminal does not display (escape sequences, CR, NUL, BEL), so
/// a device cannot keep a password readable in the transcript by echoing it with colour
/// codes between the letters. Letters match in either case. Returns the end of the span.
fn match_visible(b: &[u8], i: usize, secret: &[u8]) -> Option<usize> {
    let (first, rest) = secret.split_first()?;
    if !b.get(i)?.eq_ignore_ascii_case(first) {
        return None;
    }
    let mut j = i + 1;
    for want in rest {
        loop {
            let got = *b.get(j)?;
            if got.eq_ignore_ascii_case(want) {
                j += 1;
                break;
            }
            j = skip_invisible(b, j)?;
        }
    }
    Some(j)
}
/// The index after an invisible sequence starting at `b[j]`, if one starts there.
fn skip_invisible(b: &[u8], j: usize) -> Option<usize> {
    match *b.get(j)? {
        0 | b'\r' | 0x07 => Some(j + 1),
        0x1b => match *b.get(j + 1)? {
            b'[' => {
                // CSI: parameters, then a final byte (capped as the ANSI stripper caps it)
                let end = b.iter().skip(j + 2).take(64).position(|c| (0x40..=0x7e).contains(c))?;
                Some(j + 2 + end + 1)
            }
            b']' | b'P' | b'X' | b'^' | b'_' => {
                // a string, ended by BEL or ESC \
                let body = &b[j + 2..b.len().min(j + 2 + 4096)];
                let end = body
                    .iter()
                    .enumerate()
                    .find(|&(k, &c)| c == 0x07 || (c == 0x1b && body.get(k + 1) == Some(&b'\\')))?;
                Some(j + 2 + end.0 + if *end.1 == 0x07 { 1 } else { 2 })
            }
            0x20..=0x2f => Some(j + 3).filter(|&e| e <= b.len()),
            _ => Some(j + 2),
        },
        _ => None,
    }
}

/// A random password with upper and lower case letters, digits and symbols, using only
/// characters that terminals and shells pass through unchanged.
pub fn generate_password(len: usize) -> String {
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const DIGIT: &[u8] = b"23456789";
    const SYMBOL: &[u8] = b"-_.+=@%";
    let mut rng = rand::rng();
    let classes = [UPPER, LOWER, DIGIT, SYMBOL];
    let mut out: Vec<u8> = classes.iter().map(|c| c[rng.random_range(0..c.len())]).collect();
    while out.len() < len {
        let c = classes[rng.random_range(0..classes.len())];
        out.push(c[rng.random_range(0..c.len())]);
    }
    // shuffle so the class order is not predictable
    for i in (1..out.len()).rev() {
        let j = rng.random_range(0..=i);
        out.swap(i, j);
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_longest_first_in_text_and_bytes() {
        let r = Redactor::default();
        r.add("factory.password", "secret");
        r.add("new", "secret-longer");
        assert_eq!(
            r.redact("a secret-longer b secret"),
            "a <secret:new> b <secret:factory.password>"
        );
        assert_eq!(r.redact_bytes(b"xsecretx"), b"x<secret:factory.password>x".to_vec());
    }

    #[test]
    fn a_secret_equal_to_the_user_name_keeps_transcripts_readable_but_not_its_entry() {
        let r = Redactor::default();
        r.add_public("admin");
        r.add("factory.password", "admin");
        r.add("new", "s3cret-Long");
        assert_eq!(
            r.redact("admin login: (administrator enforced) s3cret-Long"),
            "admin login: (administrator enforced) <secret:new>"
        );
        // where certbench types it as a password it is still shown by name
        assert_eq!(r.shown_send("admin"), "<secret:factory.password>");
        assert_eq!(r.shown_send("root"), "root");
        assert_eq!(
            r.public_secrets(),
            [("factory.password".to_string(), "admin".to_string())]
        );
    }

    #[test]
    fn a_secret_is_redacted_in_its_escaped_forms_too() {
        let r = Redactor::default();
        let pw = r#"pa"ss\wo"rd"#;
        r.add("device_password", pw);
        let json = serde_json::to_string(&format!("sent {pw} now")).expect("json");
        let out = r.redact(&json);
        assert!(!out.contains("ss\\\\wo"), "{out}");
        assert!(out.contains("<secret:device_password>"), "{out}");
        let debug = format!("{:?}", format!("x{pw}y"));
        assert!(r.redact(&debug).contains("<secret:device_password>"), "{debug}");
        // memory searches still get the raw value only
        assert_eq!(r.secrets(), [("device_password".to_string(), pw.to_string())]);
    }

    #[test]
    fn a_secret_echoed_with_escape_codes_between_its_letters_is_redacted() {
        let r = Redactor::default();
        r.add("new", "hunter2!");
        for shown in [
            &b"h\x1b[1mu\x1b[0mnter2!"[..],
            b"hu\x1b]0;title\x07nt\x00er\r2!",
            b"hun\x1bP+q\x1b\\ter\x1b(B2!",
        ] {
            let mut line = b"echo: ".to_vec();
            line.extend_from_slice(shown);
            line.extend_from_slice(b" done");
            assert_eq!(r.redact_bytes(&line), b"echo: <secret:new> done".to_vec(), "{shown:?}");
        }
        // letters with visible text between them are not the secret
        assert_eq!(r.redact_bytes(b"hunterX2!"), b"hunterX2!".to_vec());
        // an escape sequence cut off at the end does not run past the input
        assert_eq!(r.redact_bytes(b"hun\x1b["), b"hun\x1b[".to_vec());
    }

    #[test]
    fn certbench_s_own_encodings_of_a_secret_are_masked_in_packets_and_redacted_in_text() {
        let r = Redactor::default();
        r.add_public("admin");
        r.add("device_password", "Xy7+pq=Lm@9sT2");
        // HTTP Basic as certbench sends it: the whole token, for the run's user
        let basic = crate::util::base64(b"admin:Xy7+pq=Lm@9sT2");
        let mut pkt = format!("GET / HTTP/1.1\r\nAuthorization: Basic {basic}\r\n\r\n").into_bytes();
        assert!(r.mask_bytes(&mut pkt) > 0);
        let shown = String::from_utf8_lossy(&pkt).into_owned();
        assert!(!shown.contains(&basic[..8]), "no part of the token stays: {shown}");
        // the same secret base64'd after any other prefix still loses its own characters
        for prefix in ["", "u", "us", "someone-else:"] {
            let enc = crate::util::base64(format!("{prefix}Xy7+pq=Lm@9sT2").as_bytes());
            let out = r.redact(&format!("token={enc}"));
            assert!(out.contains("<secret:device_password>"), "{prefix:?}: {out}");
        }
        // a login form, percent-encoded
        let form = format!("username=admin&password={}", crate::util::form_encode("Xy7+pq=Lm@9sT2"));
        let mut body = form.clone().into_bytes();
        r.mask_bytes(&mut body);
        assert!(!String::from_utf8_lossy(&body).contains("Xy7%2Bpq"), "{form}");
        assert_eq!(r.redact(&form), "username=admin&password=<secret:device_password>");
    }

    #[test]
    fn a_secret_in_another_case_is_redacted_as_a_name_server_lower_cases_it() {
        let r = Redactor::default();
        r.add("device_password", "MiXeD-Case-Pw9");
        assert_eq!(
            r.redact("{\"name\":\"mixed-case-pw9.cloud.example\"}"),
            "{\"name\":\"<secret:device_password>.cloud.example\"}"
        );
        let mut b = b"\x0emixed-case-pw9\x05cloud".to_vec();
        assert_eq!(r.mask_bytes(&mut b), 1);
        assert!(!String::from_utf8_lossy(&b).to_ascii_lowercase().contains("case-pw"));
    }

    #[test]
    fn a_secret_cut_at_a_window_edge_is_redacted_before_escaping_and_shortening() {
        let r = Redactor::default();
        r.add("device_password", "abcdefghij0123456789");
        // the source kept only the end of the echo: 17 of 20 characters
        let w = r.redact_window(b"defghij0123456789\r\nLogin incorrect", &[]);
        assert_eq!(w, "<secret:device_password…>\r\nLogin incorrect".as_bytes());
        // or only its start
        let w = r.redact_window(b"Password: abcdefghij01", &[]);
        assert_eq!(w, "Password: <secret:device_password…>".as_bytes());
        // fewer than six characters of it are left alone (they would blank out words)
        assert_eq!(r.redact_window(b"6789 done", &[]), b"6789 done".to_vec());
        // a guess certbench typed, echoed with colour codes between its letters
        let w = r.redact_window(b"you typed g\x1b[1mue\x1b[0mss-nr-7 wrong", &[("guess", "guess-nr-7")]);
        assert_eq!(w, b"you typed <secret:guess> wrong".to_vec());
    }

    #[test]
    fn base64_fragments_are_the_characters_only_the_value_decides() {
        let v = b"hello world!";
        for prefix in 0..6usize {
            for suffix in 0..3usize {
                let mut text = vec![b'#'; prefix];
                text.extend_from_slice(v);
                text.extend(std::iter::repeat_n(b'~', suffix));
                let enc = crate::util::base64(&text);
                assert!(
                    crate::util::base64_fragments(v)
                        .iter()
                        .any(|f| enc.contains(f.as_str())),
                    "{prefix}/{suffix}: {enc}"
                );
            }
        }
    }

    #[test]
    fn generated_passwords_have_every_class() {
        for _ in 0..50 {
            let p = generate_password(16);
            assert_eq!(p.len(), 16);
            assert!(p.chars().any(|c| c.is_ascii_uppercase()));
            assert!(p.chars().any(|c| c.is_ascii_lowercase()));
            assert!(p.chars().any(|c| c.is_ascii_digit()));
            assert!(p.chars().any(|c| "-_.+=@%".contains(c)));
        }
    }
}
