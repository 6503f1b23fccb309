//! The expect engine, without I/O: a bounded rolling buffer of visible console text and
//! a search that finds the earliest match of any of several patterns.
//!
//! A match consumes the buffer up to its end, so old output never satisfies a later
//! expect. Each wait remembers how far it has searched and only re-searches a small
//! overlap, so a chatty console costs linear time, and the buffer is capped so memory
//! stays bounded whatever the device prints (the raw bytes live on in the transcript).

use regex::bytes::Regex;

use super::ansi::AnsiStripper;

/// Unconsumed text kept for matching; older text is dropped (it stays in the transcript).
pub const MAX_BUFFER: usize = 1 << 20;
/// How far back a continued search looks, so a match split across chunks is found.
/// A single match longer than this may be missed while text keeps arriving.
pub const OVERLAP: usize = 16 << 10;

#[derive(Debug, Default)]
pub struct MatchBuffer {
    ansi: AnsiStripper,
    buf: Vec<u8>,
    /// Stream offset of buf[0] (total visible bytes ever dropped or consumed).
    base: u64,
}

/// One successful match.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Which of the patterns matched.
    pub index: usize,
    /// The matched text.
    pub text: String,
    /// Named groups of the pattern.
    pub captures: Vec<(String, String)>,
    /// Everything before the match since the last consumption (what the device printed
    /// on the way), truncated to its last 4 KiB.
    pub before: String,
}

/// Where a wait has got to; create one per wait (it caches the wait's combined pattern).
#[derive(Debug, Clone, Default)]
pub struct Cursor {
    scanned_to: u64,
    /// All patterns of the wait as one leftmost-first alternation, so the buffer is
    /// scanned once, not once per pattern; None until first used, or if it cannot be built.
    combined: Option<Option<Regex>>,
    /// How far back a continued search must look: the longest match any pattern can make
    /// (a match ending in new text starts at most that far back), OVERLAP when a pattern's
    /// matches are unbounded; None until first used.
    look_back: Option<usize>,
}

/// The longest match any of `patterns` can make, capped at OVERLAP (also when unbounded or
/// when a pattern cannot be analysed).
fn look_back(patterns: &[&Regex]) -> usize {
    patterns
        .iter()
        .map(|p| {
            regex_syntax::parse(p.as_str())
                .ok()
                .and_then(|h| h.properties().maximum_len())
                .unwrap_or(OVERLAP)
        })
        .max()
        .unwrap_or(0)
        .min(OVERLAP)
}

fn combine(patterns: &[&Regex]) -> Option<Regex> {
    if patterns.len() < 2 {
        return None;
    }
    let src: Vec<String> = patterns
        .iter()
        .enumerate()
        .map(|(i, p)| format!("(?P<certbench_alt{i}>{})", p.as_str()))
        .collect();
    regex::bytes::RegexBuilder::new(&src.join("|"))
        .size_limit(8 << 20)
        .build()
        .ok()
}

impl MatchBuffer {
    pub fn push(&mut self, raw: &[u8]) {
        self.ansi.push(raw, &mut self.buf);
        if self.buf.len() > MAX_BUFFER {
            let drop = self.buf.len() - MAX_BUFFER / 2;
            self.buf.drain(..drop);
            self.base += drop as u64;
        }
    }

    /// The unconsumed visible text.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Forgets everything not yet matched (a boundary between tests).
    pub fn clear(&mut self) {
        self.base += self.buf.len() as u64;
        self.buf.clear();
        self.ansi.reset();
    }

    /// Searches for the earliest-starting match of any pattern; ties go to the pattern
    /// listed first. On success the buffer is consumed up to the end of the match.
    pub fn find(&mut self, cursor: &mut Cursor, patterns: &[&Regex]) -> Option<Found> {
        let found = self.peek(cursor, patterns)?;
        let (index, start, end) = found;
        let caps = patterns[index].captures_at(&self.buf, start);
        let mut captures = Vec::new();
        if let Some(c) = caps {
            for name in patterns[index].capture_names().flatten() {
                if let Some(m) = c.name(name) {
                    captures.push((name.to_string(), String::from_utf8_lossy(m.as_bytes()).into_owned()));
                }
            }
        }
        let before_start = start.saturating_sub(4096);
        let result = Found {
            index,
            text: String::from_utf8_lossy(&self.buf[start..end]).into_owned(),
            captures,
            before: String::from_utf8_lossy(&self.buf[before_start..start]).into_owned(),
        };
        self.buf.drain(..end);
        self.base += end as u64;
        cursor.scanned_to = self.base;
        Some(result)
    }

    /// Like [`find`](Self::find) but consumes nothing: (pattern, start, end).
    pub fn peek(&self, cursor: &mut Cursor, patterns: &[&Regex]) -> Option<(usize, usize, usize)> {
        let end_abs = self.base + self.buf.len() as u64;
        let back = *cursor.look_back.get_or_insert_with(|| look_back(patterns));
        let from_abs = cursor.scanned_to.saturating_sub(back as u64).max(self.base);
        let from = (from_abs - self.base) as usize;
        let combined = cursor.combined.get_or_insert_with(|| combine(patterns));
        if let Some(all) = combined {
            // leftmost-first alternation: earliest start, ties to the pattern listed first
            // the fast search first; the capturing one only once something matched
            let found = all
                .find_at(&self.buf, from)
                .and_then(|_| all.captures_at(&self.buf, from))
                .and_then(|c| {
                    (0..patterns.len())
                        .find_map(|i| c.name(&format!("certbench_alt{i}")).map(|m| (i, m.start(), m.end())))
                });
            if found.is_none() {
                cursor.scanned_to = end_abs;
            }
            return found;
        }
        let mut best: Option<(usize, usize, usize)> = None;
        for (i, re) in patterns.iter().enumerate() {
            if let Some(m) = re.find_at(&self.buf, from)
                && best.is_none_or(|(_, s, _)| m.start() < s)
            {
                best = Some((i, m.start(), m.end()));
            }
        }
        if best.is_none() {
            cursor.scanned_to = end_abs;
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(s: &str) -> Regex {
        Regex::new(s).expect("valid regex")
    }

    #[test]
    fn match_consumes_so_old_output_cannot_match_again() {
        let mut m = MatchBuffer::default();
        m.push(b"login: ");
        let p = re("login: $");
        assert!(m.find(&mut Cursor::default(), &[&p]).is_some());
        assert!(m.find(&mut Cursor::default(), &[&p]).is_none());
        m.push(b"\r\nlogin: ");
        assert!(m.find(&mut Cursor::default(), &[&p]).is_some());
    }

    #[test]
    fn earliest_match_wins_and_captures_are_named() {
        let mut m = MatchBuffer::default();
        m.push(b"boot... firmware 1.2.3 ready\nlogin: ");
        let a = re("login: $");
        let b = re(r"firmware (?P<ver>\S+)");
        let f = m.find(&mut Cursor::default(), &[&a, &b]).expect("match");
        assert_eq!(f.index, 1);
        assert_eq!(f.captures, vec![("ver".to_string(), "1.2.3".to_string())]);
        assert_eq!(f.before, "boot... ");
        let f = m.find(&mut Cursor::default(), &[&a, &b]).expect("match");
        assert_eq!(f.index, 0);
    }

    #[test]
    fn a_match_split_across_pushes_is_found_with_ansi_inside() {
        let mut m = MatchBuffer::default();
        let p = re("Password: $");
        let mut c = Cursor::default();
        m.push(b"Pass");
        assert!(m.find(&mut c, &[&p]).is_none());
        m.push(b"wo\x1b[0mrd");
        assert!(m.find(&mut c, &[&p]).is_none());
        m.push(b": ");
        assert!(m.find(&mut c, &[&p]).is_some());
    }

    #[test]
    fn buffer_stays_bounded_on_a_chatty_console() {
        let mut m = MatchBuffer::default();
        let line = b"[    1.000000] noise noise noise noise noise noise\r\n";
        for _ in 0..(8 << 20) / line.len() {
            m.push(line);
        }
        assert!(m.pending().len() <= MAX_BUFFER);
        m.push(b"login: ");
        assert!(m.find(&mut Cursor::default(), &[&re("login: $")]).is_some());
    }
}

#[cfg(test)]
mod look_back_tests {
    use super::*;

    #[test]
    fn the_look_back_is_the_longest_possible_match() {
        let a = Regex::new("login: $").expect("re");
        let b = Regex::new("(?m)^Current password: $").expect("re");
        let c = Regex::new("firmware (?P<v>[0-9]+)").expect("re");
        assert_eq!(look_back(&[&a]), 7);
        assert_eq!(look_back(&[&a, &b]), 18);
        assert_eq!(look_back(&[&a, &c]), OVERLAP, "unbounded: the full overlap");
    }

    /// A prompt split across two reads, with much text before it, is found with the short
    /// look-back; a match right at a chunk boundary too.
    #[test]
    fn a_split_prompt_is_found_with_the_short_look_back() {
        let re = Regex::new("login: $").expect("re");
        for split in 0..8 {
            let mut m = MatchBuffer::default();
            let mut cursor = Cursor::default();
            m.push(&vec![b'x'; 10_000]);
            m.push(&b"\nsimboard login: "[..10 + split]);
            assert!(m.peek(&mut cursor, &[&re]).is_none() || split == 7);
            m.push(&b"\nsimboard login: "[10 + split..]);
            assert!(m.find(&mut cursor, &[&re]).is_some(), "split at {split}");
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Bytes a hostile console would send: mostly escape-sequence material.
    fn console_bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                Just(0x1bu8),
                Just(b'['),
                Just(b']'),
                Just(b'P'),
                Just(0x07),
                Just(b'\\'),
                Just(0x18),
                Just(0x1a),
                Just(b'\r'),
                Just(b'\n'),
                Just(0),
                any::<u8>(),
            ],
            0..2048,
        )
    }

    proptest! {
        /// Stripping does not depend on how the bytes were chunked, never emits ESC, CR or
        /// NUL, and never emits more than it was given.
        #[test]
        fn stripping_is_chunking_invariant_and_clean(input in console_bytes(), cuts in proptest::collection::vec(any::<usize>(), 0..16)) {
            let mut whole = Vec::new();
            AnsiStripper::default().push(&input, &mut whole);
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
            points.sort_unstable();
            let mut chunked = Vec::new();
            let mut s = AnsiStripper::default();
            let mut at = 0;
            for p in points.into_iter().chain([input.len()]) {
                s.push(&input[at..p], &mut chunked);
                at = p;
            }
            prop_assert_eq!(&whole, &chunked);
            prop_assert!(whole.len() <= input.len());
            prop_assert!(!whole.iter().any(|b| matches!(b, 0x1b | b'\r' | 0)));
        }

        /// Whatever came before, CAN followed by text makes the text visible to the
        /// matcher: a device cannot blind it for good.
        #[test]
        fn can_resynchronises_whatever_came_before(junk in console_bytes()) {
            let mut m = MatchBuffer::default();
            m.push(&junk);
            m.push(b"\x18login: ");
            let re = Regex::new("login: $").expect("regex");
            prop_assert!(m.find(&mut Cursor::default(), &[&re]).is_some());
        }

        /// The buffer stays bounded whatever arrives, and a match is found however the
        /// text around it was chunked.
        #[test]
        fn the_buffer_is_bounded_and_matches_survive_chunking(
            noise in proptest::collection::vec(any::<u8>(), 0..4096),
            repeat in 1usize..300,
            split in 0usize..9,
        ) {
            let mut m = MatchBuffer::default();
            for _ in 0..repeat {
                m.push(&noise);
                prop_assert!(m.pending().len() <= MAX_BUFFER);
            }
            m.push(b"\x18\n");
            let text = b"Password: ";
            let (a, b) = text.split_at(split.min(text.len()));
            let re = Regex::new("Password: $").expect("regex");
            let mut cursor = Cursor::default();
            m.push(a);
            let early = m.peek(&mut cursor, &[&re]);
            m.push(b);
            prop_assert!(early.is_none() || b.is_empty());
            prop_assert!(m.find(&mut cursor, &[&re]).is_some());
        }
    }
}
