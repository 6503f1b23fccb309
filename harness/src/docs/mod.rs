//! Documentary checks (DOC-01..03): what a machine can decide about the maker's documents
//! (security.txt per RFC 9116, disclosure policy, support period, privacy policy). What
//! remains is a person's judgement: the verdict is REVIEW until a sign-off records it.

use time::OffsetDateTime;

pub mod readability;

/// Findings of the automatic part: `missing` decides FAIL; `notes` inform the reviewer.
#[derive(Debug, Default, PartialEq)]
pub struct Findings {
    pub missing: Vec<String>,
    pub notes: Vec<String>,
}

fn re(p: &str) -> regex::Regex {
    regex::RegexBuilder::new(p)
        .case_insensitive(true)
        .build()
        .unwrap_or_else(|e| panic!("static regex {p}: {e}"))
}

fn is_uri(v: &str) -> Result<(), String> {
    let v = v.trim();
    if v.starts_with("http://") {
        return Err(format!("{v:?} uses http://; web URIs must use https:// (RFC 9116 2.5)"));
    }
    if v.starts_with("https://")
        || v.starts_with("mailto:")
        || v.starts_with("tel:")
        || v.starts_with("openpgp4fpr:")
        || v.starts_with("dns:")
    {
        Ok(())
    } else {
        Err(format!("{v:?} is not a URI (expected https://, mailto: or tel:)"))
    }
}

/// RFC 9116: Contact (one or more) and Expires (exactly one, in the future) are required;
/// field syntax, URI fields, single-instance fields.
pub fn security_txt(text: &str, now: OffsetDateTime) -> Findings {
    let mut f = Findings::default();
    let mut body: Vec<&str> = text.lines().collect();
    if body
        .first()
        .is_some_and(|l| l.starts_with("-----BEGIN PGP SIGNED MESSAGE-----"))
    {
        let start = body.iter().position(|l| l.is_empty()).map(|i| i + 1).unwrap_or(1);
        let end = body
            .iter()
            .position(|l| l.starts_with("-----BEGIN PGP SIGNATURE-----"))
            .unwrap_or(body.len());
        body = body[start..end].to_vec();
        f.notes
            .push("the file is PGP-signed (the signature itself is not verified here)".into());
    }
    let field = re(r"^([A-Za-z0-9-]+):\s*(.*)$");
    let mut contacts = 0;
    let mut expires = Vec::new();
    let mut langs = 0;
    // lines not in the format are named by number, quoted only as a short excerpt, and at
    // most three of them: a profile pointing at the wrong file must not copy it into reports
    let mut bad_lines = 0usize;
    for (n, line) in body.iter().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(c) = field.captures(line) else {
            bad_lines += 1;
            if bad_lines <= 3 {
                let excerpt: String = line.chars().take(24).collect();
                let more = if line.chars().count() > 24 { "…" } else { "" };
                f.missing
                    .push(format!("line {}: not a `Field: value` line: {excerpt:?}{more}", n + 1));
            }
            continue;
        };
        let (name, value) = (c[1].to_ascii_lowercase(), c[2].trim().to_string());
        match name.as_str() {
            "contact" => {
                contacts += 1;
                if let Err(e) = is_uri(&value) {
                    f.missing.push(format!("Contact {e}"));
                }
            }
            "expires" => expires.push(value),
            "encryption" | "acknowledgments" | "policy" | "hiring" | "canonical" | "csaf" => {
                if let Err(e) = is_uri(&value) {
                    f.missing.push(format!("{} {e}", &c[1]));
                }
            }
            "preferred-languages" => langs += 1,
            _ => f.notes.push(format!("extension field {:?}", &c[1])),
        }
    }
    if bad_lines > 3 {
        f.missing.push(format!(
            "{} more lines not in the `Field: value` format (not quoted)",
            bad_lines - 3
        ));
    }
    if contacts == 0 {
        f.missing.push("no Contact field (RFC 9116 2.5.3: required)".into());
    }
    if langs > 1 {
        f.missing.push("Preferred-Languages appears more than once".into());
    }
    match expires.as_slice() {
        [] => f.missing.push("no Expires field (RFC 9116 2.5.5: required)".into()),
        [one] => match OffsetDateTime::parse(one, &time::format_description::well_known::Rfc3339) {
            Err(_) => f.missing.push(format!("Expires {one:?} is not an RFC 3339 date-time")),
            Ok(t) if t <= now => f
                .missing
                .push(format!("Expires {one} is in the past: the file is stale")),
            Ok(t) if t - now > time::Duration::days(366) => f.notes.push(format!(
                "Expires {one} is more than a year ahead (RFC 9116 recommends less)"
            )),
            Ok(_) => {}
        },
        _ => f
            .missing
            .push("Expires appears more than once (RFC 9116: exactly once)".into()),
    }
    f
}

fn require(f: &mut Findings, text: &str, what: &str, patterns: &[&str]) {
    if !patterns.iter().any(|p| re(p).is_match(text)) {
        f.missing.push(what.to_string());
    }
}

/// EN 303 645 5.2-1: contact, and timelines for acknowledgement and status updates.
pub fn disclosure_policy(text: &str) -> Findings {
    let mut f = Findings::default();
    require(
        &mut f,
        text,
        "a contact (e-mail address or https URL) for reporting issues",
        &[r"[\w.+-]+@[\w-]+\.[\w.]+", r"https://\S+"],
    );
    require(
        &mut f,
        text,
        "a timeline for acknowledging a report",
        &[
            r"acknowledg\w*[^.]{0,100}?\b\d+\s*(business\s+|working\s+)?(hours?|days?|weeks?)",
            r"\b\d+\s*(business\s+|working\s+)?(hours?|days?|weeks?)[^.]{0,60}acknowledg",
        ],
    );
    require(
        &mut f,
        text,
        "a timeline for status updates until resolution",
        &[
            r"(status|progress)\s+updates?[^.]{0,100}?(\b\d+\s*(hours?|days?|weeks?)|every\s+\w+)",
            r"(every|each)\s+\d+\s*(days?|weeks?)[^.]{0,60}(status|progress|update)",
        ],
    );
    f
}

/// EN 303 645 5.3-13: a defined support period with an end date (not already past).
pub fn support_period(text: &str, now: OffsetDateTime) -> Findings {
    let mut f = Findings::default();
    let date = re(
        r"(support|security updates?|updates?)[^.]{0,160}?(until|through|till|ends?|end of|expires?)[^.\d]{0,40}(\d{4}-\d{2}-\d{2})",
    );
    match date.captures(text) {
        None => f
            .missing
            .push("a support period with an end date (YYYY-MM-DD) after words like \"security updates until\"".into()),
        Some(c) => {
            let fmt = time::macros::format_description!("[year]-[month]-[day]");
            match time::Date::parse(&c[3], &fmt) {
                Err(_) => f
                    .missing
                    .push(format!("support end date {:?} is not a valid date", &c[3])),
                Ok(d) if d < now.date() => f.missing.push(format!("the support period ended on {d}")),
                Ok(d) => f.notes.push(format!("security updates promised until {d}")),
            }
        }
    }
    f
}

/// Whether a page is HTML rather than plain text or Markdown (its own tags say so).
pub fn looks_like_html(s: &str) -> bool {
    let head: String = s.chars().take(4096).collect::<String>().to_ascii_lowercase();
    ["<html", "<body", "<p>", "<p ", "</p>", "<h1", "<div", "<br"]
        .iter()
        .any(|t| head.contains(t))
}

/// The text a reader sees on an HTML page: scripts, styles, the title and comments dropped, block
/// elements (paragraphs, headings, list items, line breaks, table cells) ending a block,
/// headings kept as Markdown headings (titles, not prose), other tags removed, the common
/// character references decoded.
pub fn html_text(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let mut out = String::with_capacity(html.len());
    let mut i = 0;
    while i < html.len() {
        let rest = &lower[i..];
        if rest.starts_with("<!--") {
            i += rest.find("-->").map_or(rest.len(), |e| e + 3);
            continue;
        }
        if let Some(skip) = ["<script", "<style", "<title"].iter().find(|t| rest.starts_with(**t)) {
            let close = format!("</{}", &skip[1..]);
            i += rest.find(&close).map_or(rest.len(), |e| e + close.len());
            i += lower[i..].find('>').map_or(lower.len() - i, |e| e + 1);
            continue;
        }
        if let Some(tag) = rest.strip_prefix('<') {
            let end = rest.find('>').map_or(rest.len(), |e| e + 1);
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            let opening = !tag.starts_with('/');
            match name.as_str() {
                "h1" | "h2" | "h3" | "h4" | "h5" | "h6" if opening => out.push_str("\n\n# "),
                "p" | "div" | "li" | "br" | "tr" | "td" | "th" | "section" | "article" | "ul" | "ol" | "table"
                | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "title" => out.push_str("\n\n"),
                _ => {}
            }
            i += end;
            continue;
        }
        let c = html[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&rsquo;", "'")
        .replace("&amp;", "&")
}

/// `s` on one line, without control characters, at most 200 characters.
fn one_line(s: &str) -> String {
    let line: String = s
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if line.chars().count() > 200 {
        format!("{}…", line.chars().take(200).collect::<String>())
    } else {
        line
    }
}

/// Like [`require`], sentence by sentence: the first sentence that satisfies the clause is
/// quoted in the notes (the evidence it was found).
fn require_quoted(f: &mut Findings, sentences: &[String], what: &str, patterns: &[&str]) {
    let patterns: Vec<regex::Regex> = patterns.iter().map(|p| re(p)).collect();
    match sentences.iter().find(|s| patterns.iter().any(|p| p.is_match(s))) {
        Some(s) => f.notes.push(format!("{what}: \"{}\"", one_line(s))),
        None => f.missing.push(what.to_string()),
    }
}

/// Common English words: a text where fewer than one word in eight is one of them is not
/// read as English (the readability formulas are for English).
const ENGLISH: &[&str] = &[
    "the", "and", "of", "to", "a", "in", "is", "we", "you", "your", "our", "for", "with", "it", "that", "or", "on",
    "by", "this", "be", "are", "not", "if", "at", "as", "an", "us", "can", "will", "from", "any",
];

fn is_english(text: &str) -> bool {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let common = words.iter().filter(|w| ENGLISH.contains(&w.as_str())).count();
    !words.is_empty() && common * 8 >= words.len()
}

/// The clauses the founding letter asks of a privacy policy (each found one quoted), and
/// whether a reader of the declared grade can read it (Flesch–Kincaid, English only).
pub fn privacy_policy(text: &str, max_grade: u8) -> Findings {
    let mut f = Findings::default();
    privacy_clauses(&mut f, text);
    if !is_english(text) {
        f.notes.push(
            "readability not tested: the policy is not English text, and no formula for its language is configured"
                .into(),
        );
        return f;
    }
    match readability::measure(text) {
        None => f.missing.push("prose a reader can read (the policy holds no sentence)".into()),
        Some(r) if r.grade > f64::from(max_grade) => {
            let hardest: Vec<String> = r
                .hardest
                .iter()
                .take(5)
                .map(|(g, s)| format!("(grade {g:.1}) \"{}\"", one_line(s)))
                .collect();
            f.missing.push(format!(
                "readability for its audience: it reads at grade {:.1} (Flesch–Kincaid; reading ease {:.1}; {} sentences, {} words, {} syllables), above grade {max_grade}; its hardest sentences: {}",
                r.grade,
                r.reading_ease,
                r.sentences,
                r.words,
                r.syllables,
                hardest.join("; ")
            ));
        }
        Some(r) => f.notes.push(format!(
            "readable at grade {:.1} (Flesch–Kincaid; reading ease {:.1}; {} sentences, {} words, {} syllables), within grade {max_grade}",
            r.grade, r.reading_ease, r.sentences, r.words, r.syllables
        )),
    }
    f
}

fn privacy_clauses(f: &mut Findings, text: &str) {
    let text = &readability::sentence_texts(text);
    require_quoted(
        f,
        text,
        "what personal data is collected",
        &[
            r"(collect|process|gather)\w*[^.]{0,80}(personal (data|information)|data about you|following (data|information))",
        ],
    );
    require_quoted(
        f,
        text,
        "why it is collected (purposes)",
        &[r"purpose", r"we use (your|this|the) (data|information)", r"in order to"],
    );
    require_quoted(
        f,
        text,
        "which third parties receive it",
        &[
            r"third[- ]part",
            r"(share|disclose)\w*[^.]{0,60}\bwith\b",
            r"processors?",
        ],
    );
    require_quoted(
        f,
        text,
        "retention periods (a period with its unit, or the criterion that ends it)",
        &[
            r"(retain|retention|keep|store)\w*[^.]{0,80}\b\d+\s*(days?|months?|years?)",
            r"(retain|keep|store)\w*[^.]{0,80}\b(until|as long as)\b",
            r"retention period[^.]{0,80}\b(\d+\s*(days?|months?|years?)|until|as long as)",
        ],
    );
    require_quoted(
        f,
        text,
        "how to delete data and the account",
        &[
            r"(delet|eras|remov)\w*[^.]{0,80}account[^.]{0,80}data|(delet|eras|remov)\w*[^.]{0,80}(your|personal) data[^.]{0,80}account",
        ],
    );
    require_quoted(
        f,
        text,
        "how to opt out of marketing",
        &[
            r"(marketing|newsletter|promotional)[^.]{0,120}(opt[- ]?out|unsubscribe|withdraw|object|turn off)",
            r"(opt[- ]?out|unsubscribe)[^.]{0,80}(marketing|newsletter|promotional)",
        ],
    );
    require_quoted(
        f,
        text,
        "how changes to the policy are notified",
        &[
            r"(change|update|amend)\w*[^.]{0,80}(this|our) (policy|notice)[^.]{0,120}(notify|inform|tell|e-?mail|announce)",
            r"(notify|inform)[^.]{0,80}(change|update)\w*[^.]{0,40}(policy|notice)",
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::parse("2026-11-25T12:00:00Z", &time::format_description::well_known::Rfc3339).expect("date")
    }

    #[test]
    fn security_txt_valid_expired_and_missing_contact() {
        let ok =
            "Contact: mailto:security@example.com\nExpires: 2027-06-30T00:00:00Z\nPolicy: https://example.com/vdp\n";
        assert_eq!(security_txt(ok, now()).missing, Vec::<String>::new());
        let expired = "Contact: https://example.com/report\nExpires: 2025-01-01T00:00:00Z\n";
        assert!(security_txt(expired, now()).missing[0].contains("in the past"));
        let no_contact = "Expires: 2027-06-30T00:00:00Z\n";
        assert!(security_txt(no_contact, now()).missing[0].contains("no Contact"));
        let http = "Contact: http://example.com\nExpires: 2027-06-30T00:00:00Z\n";
        assert!(security_txt(http, now()).missing[0].contains("https://"));
        let twice = "Contact: mailto:a@b.c\nExpires: 2027-06-30T00:00:00Z\nExpires: 2027-07-30T00:00:00Z\n";
        assert!(security_txt(twice, now()).missing[0].contains("more than once"));
    }

    #[test]
    fn support_period_needs_a_future_end_date() {
        assert!(
            support_period("We provide security updates until 2030-12-31.", now())
                .missing
                .is_empty()
        );
        assert!(support_period("Security updates until 2020-01-01.", now()).missing[0].contains("ended"));
        assert!(support_period("We support our products for a long time.", now()).missing[0].contains("end date"));
    }

    fn fixture(rel: &str) -> String {
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)).expect("fixture")
    }

    /// Each clause found is quoted (the sentence, as evidence); the good board's policy
    /// reads within grade 9.
    #[test]
    fn privacy_policy_clauses_quoted_and_readable() {
        let f = privacy_policy(&fixture("devices/simboard-docs/privacy-policy.md"), 9);
        assert_eq!(f.missing, Vec::<String>::new());
        assert!(
            f.notes.iter().any(|n| n
                == "how to delete data and the account: \"You can delete your account and all your personal data in the app, under Settings.\""),
            "{:?}",
            f.notes
        );
        assert!(
            f.notes
                .iter()
                .any(|n| n.starts_with("retention periods") && n.contains("12 months")),
            "{:?}",
            f.notes
        );
        assert!(
            f.notes.iter().any(|n| n.starts_with("readable at grade")),
            "{:?}",
            f.notes
        );
        // a children's product asks more of the same text
        let kids = privacy_policy(&fixture("devices/simboard-docs/privacy-policy.md"), 3);
        assert!(
            kids.missing.iter().any(|m| m.contains("above grade 3")),
            "{:?}",
            kids.missing
        );
    }

    /// Every clause present, in sentences a consumer cannot read: FAIL with the figures and
    /// the five hardest sentences.
    #[test]
    fn legalese_fails_readability_with_its_hardest_sentences() {
        let f = privacy_policy(&fixture("fixtures/docs/privacy-legalese.md"), 9);
        assert_eq!(f.missing.len(), 1, "{:?}", f.missing);
        let m = &f.missing[0];
        assert!(m.starts_with("readability for its audience: it reads at grade"), "{m}");
        assert_eq!(m.matches("(grade ").count(), 5, "{m}");
        assert!(m.contains("Notwithstanding any contrary provisions"), "{m}");
    }

    #[test]
    fn other_languages_are_not_scored() {
        let f = privacy_policy(&fixture("fixtures/docs/privacy-german.md"), 9);
        assert!(
            f.notes.iter().any(|n| n.starts_with("readability not tested")),
            "{:?}",
            f.notes
        );
        assert!(!f.missing.iter().any(|m| m.contains("readability")), "{:?}", f.missing);
    }

    /// A retention clause needs a period with its unit or the criterion that ends it.
    #[test]
    fn retention_needs_a_period_or_a_criterion() {
        let clause = |t: &str| {
            privacy_policy(t, 9)
                .missing
                .iter()
                .any(|m| m.starts_with("retention periods"))
        };
        assert!(!clause("We keep your readings for 12 months."));
        assert!(!clause("We store account data until you delete your account."));
        assert!(clause("We keep your readings for a while."));
        assert!(clause("Our retention period is appropriate."));
    }

    /// A policy served as HTML reads as its text: tags are not words, scripts and styles
    /// not prose, headings not sentences.
    #[test]
    fn html_pages_are_read_as_their_text() {
        let md = fixture("devices/simboard-docs/privacy-policy.md");
        let html = format!(
            "<!DOCTYPE html><html><head><title>Privacy</title><style>p {{ color: red; }}</style><script>var x = 'collect personal data';</script></head><body>{}</body></html>",
            md.split("\n\n")
                .map(|b| match b.strip_prefix("## ").or_else(|| b.strip_prefix("# ")) {
                    Some(h) => format!("<h2 class=\"t\">{h}</h2>"),
                    None => format!(
                        "<p>{}</p>\n<!-- note -->",
                        b.replace('\n', " ").replace("e-mail", "e&#39;mail")
                    ),
                })
                .collect::<String>()
        );
        assert!(looks_like_html(&html) && !looks_like_html(&md));
        let text = html_text(&html);
        assert!(
            !text.contains('<') && !text.contains("color: red") && !text.contains("var x"),
            "{text}"
        );
        let (a, b) = (
            readability::measure(&md).expect("md"),
            readability::measure(&text).expect("html"),
        );
        assert_eq!((a.sentences, a.words), (b.sentences, b.words), "{text}");
        assert!(privacy_policy(&text, 9).missing.is_empty(), "{text}");
    }
}
