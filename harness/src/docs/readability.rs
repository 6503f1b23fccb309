//! Readability of English prose: Flesch Reading Ease and the Flesch–Kincaid grade level,
//! computed over sentences, words and syllables counted by the documented rules below.
//!
//! - **Text.** Markdown headings (`#` lines) are titles, not prose, and are left out; link
//!   targets (`[text](url)`) keep their text; list markers and emphasis are dropped. A
//!   sentence ends at `.`, `!` or `?` followed by a space or the end, at a blank line and at
//!   the end of a list item.
//! - **Words.** Runs of letters, `'` and `-` that hold a letter; numbers, addresses and URLs
//!   (tokens with `@`, `/` or `:` inside) are not words.
//! - **Syllables** of a word (a hyphenated word: the sum of its parts): groups of vowels
//!   (`a e i o u`, and `y` when not first), where `u` after `q` is a consonant; `ia` and
//!   `io` are two syllables except in `-cia-`, `-tia-`, `-cio-`, `-tio-`, `-sio-` (special,
//!   nation, vision); `ei`/`ii` before `ng` are two (being); a final silent `e` is not one
//!   (`-le` after a consonant is: table); `-ed` not after `t`/`d` and `-es` not after
//!   `s x z c g ch sh` add none (used, makes; wanted, services); at least one per word.
//!
//! The formulas (Kincaid et al. 1975): ease = 206.835 − 1.015·(words/sentence) −
//! 84.6·(syllables/word); grade = 0.39·(words/sentence) + 11.8·(syllables/word) − 15.59.

/// The counts of a text and the two scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Readability {
    pub sentences: usize,
    pub words: usize,
    pub syllables: usize,
    pub reading_ease: f64,
    pub grade: f64,
    /// Each sentence with its own grade, hardest first.
    pub hardest: Vec<(f64, String)>,
}

/// One sentence's words and syllables.
struct Sentence {
    text: String,
    words: usize,
    syllables: usize,
}

/// Flesch–Kincaid grade of `words` words and `syllables` syllables in `sentences` sentences.
pub fn grade(sentences: usize, words: usize, syllables: usize) -> f64 {
    let (s, w, y) = (sentences.max(1) as f64, words.max(1) as f64, syllables as f64);
    0.39 * (w / s) + 11.8 * (y / w) - 15.59
}

/// Flesch Reading Ease of the same counts.
pub fn reading_ease(sentences: usize, words: usize, syllables: usize) -> f64 {
    let (s, w, y) = (sentences.max(1) as f64, words.max(1) as f64, syllables as f64);
    206.835 - 1.015 * (w / s) - 84.6 * (y / w)
}

/// Scores of a text; `None` when it holds no sentence with a word.
pub fn measure(text: &str) -> Option<Readability> {
    let sentences = sentences(text);
    if sentences.is_empty() {
        return None;
    }
    let words = sentences.iter().map(|s| s.words).sum();
    let syllables = sentences.iter().map(|s| s.syllables).sum();
    let mut hardest: Vec<(f64, String)> = sentences
        .iter()
        .map(|s| (grade(1, s.words, s.syllables), s.text.clone()))
        .collect();
    hardest.sort_by(|a, b| b.0.total_cmp(&a.0));
    Some(Readability {
        sentences: sentences.len(),
        words,
        syllables,
        reading_ease: reading_ease(sentences.len(), words, syllables),
        grade: grade(sentences.len(), words, syllables),
        hardest,
    })
}

/// The prose of a Markdown or plain text, one string per paragraph or list item.
fn blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, out: &mut Vec<String>| {
        if !cur.trim().is_empty() {
            out.push(std::mem::take(cur));
        }
        cur.clear();
    };
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            flush(&mut cur, &mut out);
            continue;
        }
        let item = t.strip_prefix("- ").or_else(|| t.strip_prefix("* ")).or_else(|| {
            let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
            (digits > 0).then(|| t[digits..].strip_prefix(". ")).flatten()
        });
        if let Some(rest) = item {
            flush(&mut cur, &mut out);
            cur.push_str(rest);
            continue;
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(t);
    }
    flush(&mut cur, &mut out);
    out.into_iter().map(|b| unmark(&b)).collect()
}

/// `[text](target)` → `text`; `*`, `_` and backquotes dropped.
fn unmark(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("](") {
        let Some(end) = rest[i..].find(')') else { break };
        out.push_str(&rest[..i]);
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    out.chars().filter(|c| !matches!(c, '*' | '_' | '`' | '[')).collect()
}

/// The sentences of a text's prose, as [`measure`] counts them (Markdown removed).
pub fn sentence_texts(text: &str) -> Vec<String> {
    sentences(text).into_iter().map(|s| s.text).collect()
}

fn sentences(text: &str) -> Vec<Sentence> {
    let mut out = Vec::new();
    for block in blocks(text) {
        let chars: Vec<char> = block.chars().collect();
        let mut start = 0;
        for i in 0..chars.len() {
            let end = matches!(chars[i], '.' | '!' | '?')
                && chars
                    .get(i + 1)
                    .is_none_or(|c| c.is_whitespace() || *c == '"' || *c == ')');
            if end || i + 1 == chars.len() {
                let s: String = chars[start..=i].iter().collect();
                start = i + 1;
                let (words, syllables) = count(&s);
                if words > 0 {
                    out.push(Sentence {
                        text: s.trim().to_string(),
                        words,
                        syllables,
                    });
                }
            }
        }
    }
    out
}

/// Words and syllables of a piece of text.
fn count(s: &str) -> (usize, usize) {
    let mut words = 0;
    let mut syllables = 0;
    for token in s.split_whitespace() {
        let inner = token.trim_matches(|c: char| !c.is_alphanumeric());
        if inner.contains(['@', '/', ':']) || !inner.chars().any(|c| c.is_alphabetic()) {
            continue;
        }
        let letters: String = inner
            .chars()
            .filter(|c| c.is_alphabetic() || *c == '-' || *c == '\'')
            .collect();
        let parts: Vec<&str> = letters
            .split('-')
            .filter(|p| p.chars().any(char::is_alphabetic))
            .collect();
        if parts.is_empty() {
            continue;
        }
        words += 1;
        syllables += parts.iter().map(|p| word_syllables(p)).sum::<usize>();
    }
    (words, syllables)
}

/// Syllables of one word by the rules in the module's documentation.
pub fn word_syllables(word: &str) -> usize {
    let w: Vec<char> = word
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphabetic())
        .collect();
    if w.is_empty() {
        return 1;
    }
    let vowel = |i: usize| -> bool {
        match w[i] {
            'a' | 'e' | 'i' | 'o' => true,
            'u' => !(i > 0 && w[i - 1] == 'q'),
            'y' => i > 0,
            _ => false,
        }
    };
    let mut n = 0usize;
    let mut i = 0;
    while i < w.len() {
        if !vowel(i) {
            i += 1;
            continue;
        }
        n += 1;
        let mut j = i + 1;
        while j < w.len() && vowel(j) {
            let pair = (w[j - 1], w[j]);
            let before = if j >= 2 { Some(w[j - 2]) } else { None };
            let hiatus = match pair {
                ('i', 'a') | ('i', 'o') => !matches!(before, Some('c' | 't' | 's')),
                ('e' | 'i', 'i') => w.get(j + 1) == Some(&'n') && w.get(j + 2) == Some(&'g'),
                _ => false,
            };
            if hiatus {
                n += 1;
            }
            j += 1;
        }
        i = j;
    }
    let len = w.len();
    let ends = |s: &str| w.iter().rev().take(s.len()).rev().copied().eq(s.chars());
    let consonant_before = |k: usize| len > k && !vowel(len - 1 - k);
    let silent_e = ends("e") && !ends("ee") && !(ends("le") && consonant_before(2)) && consonant_before(1);
    let silent_ed = ends("ed") && !matches!(w.get(len.wrapping_sub(3)), Some('t' | 'd')) && consonant_before(2);
    let silent_es = ends("es")
        && !(matches!(w.get(len.wrapping_sub(3)), Some('s' | 'x' | 'z' | 'c' | 'g')) || ends("ches") || ends("shes"))
        && consonant_before(2);
    if n > 1 && (silent_e || silent_ed || silent_es) {
        n -= 1;
    }
    n.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked examples published with the formulas (Flesch's "cat" sentence, and the
    /// two examples of the Flesch–Kincaid article): counts and scores.
    #[test]
    fn published_examples() {
        let cat = measure("The cat sat on the mat.").expect("prose");
        assert_eq!((cat.sentences, cat.words, cat.syllables), (1, 6, 6));
        assert_eq!(cat.reading_ease.round(), 116.0);

        let s = measure("This sentence, taken as a reading passage unto itself, is being used to prove a point.")
            .expect("prose");
        assert_eq!((s.words, s.syllables), (16, 23));
        assert_eq!(s.reading_ease.round(), 69.0);

        let p = measure("The Australian platypus is seemingly a hybrid of a mammal and reptilian creature.")
            .expect("prose");
        assert_eq!((p.words, p.syllables), (13, 26));
        assert_eq!((p.grade * 10.0).round() / 10.0, 13.1);
        assert_eq!((p.reading_ease * 10.0).round() / 10.0, 24.4);
    }

    #[test]
    fn syllable_rules() {
        for (w, n) in [
            ("the", 1),
            ("table", 2),
            ("make", 1),
            ("makes", 1),
            ("used", 1),
            ("wanted", 2),
            ("services", 3),
            ("purposes", 3),
            ("nation", 2),
            ("special", 2),
            ("period", 3),
            ("media", 3),
            ("being", 2),
            ("quality", 3),
            ("every", 3),
            ("yes", 1),
            ("you", 1),
            ("agree", 2),
            ("personal", 3),
            ("information", 4),
            ("unsubscribe", 3),
        ] {
            assert_eq!(word_syllables(w), n, "{w}");
        }
    }

    #[test]
    fn markdown_headings_lists_and_links() {
        let r = measure("# Title of the page\n\n- first item\n- second item. Another one\n\nSee [our page](https://example.com/x) now.\n")
            .expect("prose");
        // the heading is not prose; each list item and the paragraph are sentences
        assert_eq!(r.sentences, 4, "{r:?}");
        assert!(r.hardest.iter().all(|(_, s)| !s.contains("https")), "{r:?}");
        assert!(measure("# Only a title\n").is_none());
        // numbers and addresses are not words
        assert_eq!(
            measure("Write to privacy@example.com within 30 days.")
                .expect("prose")
                .words,
            4
        );
    }
}
