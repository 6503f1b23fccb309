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
    /// The streaming search: the patterns as one lazy DFA whose state is carried from one
    /// read to the next, so new text is scanned once and a read that cannot complete a
    /// match costs no regex search at all. None until first used; Some(None) when the
    /// patterns need what a DFA cannot do (e.g. a Unicode word boundary): then every read
    /// is searched with the look-back, as before.
    stream: Option<Option<Box<Stream>>>,
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

/// A lazy DFA of a wait's patterns, run over the visible text as it arrives. It says only
/// whether a match may end in what it has seen (the regex search then finds which, where and
/// its captures, exactly as without it); while no pattern is under way it skips to the next
/// place a match could start (the patterns' literal prefixes), when they have one.
#[derive(Debug, Clone)]
struct Stream {
    dfa: regex_automata::hybrid::dfa::DFA,
    cache: regex_automata::hybrid::dfa::Cache,
    /// Every match starts with one of these literals; the longest one's length.
    prefix: Option<(regex_automata::util::prefilter::Prefilter, usize)>,
    /// The DFA's state after the text up to `pos` (None: start afresh at `pos`).
    state: Option<regex_automata::hybrid::LazyStateID>,
    /// Stream offset scanned up to.
    pos: u64,
    /// A match state was reached: a match may end in the text seen (until the next reset).
    hit: bool,
}

impl Stream {
    fn new(patterns: &[&Regex]) -> Option<Self> {
        use regex_automata::hybrid::dfa::DFA;
        let src: Vec<&str> = patterns.iter().map(|p| p.as_str()).collect();
        let dfa = DFA::builder()
            .configure(DFA::config().specialize_start_states(true))
            .build_many(&src)
            .ok()?;
        let cache = dfa.create_cache();
        Some(Self {
            prefix: prefixes(&src),
            dfa,
            cache,
            state: None,
            pos: 0,
            hit: false,
        })
    }

    /// Starts afresh at `pos` (after a match was consumed, or text was dropped).
    fn reset(&mut self, pos: u64) {
        self.state = None;
        self.pos = pos;
        self.hit = false;
    }

    /// Scans the text not yet seen; Some(true) if a match may end in the buffer, Some(false)
    /// if none can, None if the DFA gave up (the caller then searches as without it).
    fn advance(&mut self, buf: &[u8], base: u64) -> Option<bool> {
        use regex_automata::{Input, Span};
        if self.hit {
            return Some(true);
        }
        if self.pos < base {
            // text dropped unseen (a flood between two looks): start at what is kept
            self.reset(base);
        }
        let end = buf.len();
        let mut i = (self.pos - base) as usize;
        let start_at = |dfa: &regex_automata::hybrid::dfa::DFA, cache: &mut _, i: usize| {
            dfa.start_state_forward(cache, &Input::new(buf).range(i..)).ok()
        };
        let mut sid = match self.state {
            Some(s) => s,
            None => start_at(&self.dfa, &mut self.cache, i)?,
        };
        while i < end {
            if sid.is_tagged() {
                if sid.is_match() {
                    self.hit = true;
                    return Some(true);
                }
                if sid.is_quit() {
                    return None;
                }
                if sid.is_dead() {
                    // nothing can match from here on this path: start over at this byte
                    sid = start_at(&self.dfa, &mut self.cache, i)?;
                }
                if sid.is_start()
                    && let Some((pre, longest)) = &self.prefix
                {
                    match pre.find(buf, Span::from(i..end)) {
                        None => {
                            // no match starts before the last (longest - 1) bytes: a prefix
                            // may be cut off there, so the next read resumes at it
                            let resume = end.saturating_sub(longest.saturating_sub(1)).max(i);
                            self.reset(base + resume as u64);
                            return Some(false);
                        }
                        Some(sp) if sp.start > i => {
                            i = sp.start;
                            sid = start_at(&self.dfa, &mut self.cache, i)?;
                            continue;
                        }
                        Some(_) => {}
                    }
                }
            }
            sid = self.dfa.next_state(&mut self.cache, sid, buf[i]).ok()?;
            i += 1;
        }
        // a match may end where the text ends for now (`login: $`); the end-of-text step
        // is only looked at, the state goes on with the next read
        let eoi = self.dfa.next_eoi_state(&mut self.cache, sid).ok()?;
        if sid.is_match() || eoi.is_match() {
            self.hit = true;
            return Some(true);
        }
        self.state = Some(sid);
        self.pos = base + end as u64;
        Some(false)
    }
}

/// The literals every match of one of the patterns starts with, as a prefilter, and the
/// longest one's length; None when some pattern has no such finite set.
fn prefixes(patterns: &[&str]) -> Option<(regex_automata::util::prefilter::Prefilter, usize)> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let mut all: Vec<Vec<u8>> = Vec::new();
    for p in patterns {
        let hir = regex_syntax::ParserBuilder::new().utf8(false).build().parse(p).ok()?;
        let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
        for lit in seq.literals()? {
            if lit.as_bytes().is_empty() {
                return None;
            }
            all.push(lit.as_bytes().to_vec());
        }
    }
    let longest = all.iter().map(Vec::len).max()?;
    // leftmost-first: the earliest-starting candidate (not the earliest-ending one)
    let pre = regex_automata::util::prefilter::Prefilter::new(regex_automata::MatchKind::LeftmostFirst, &all)?;
    Some((pre, longest))
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
        if let Some(Some(stream)) = &mut cursor.stream {
            stream.reset(self.base);
        }
        Some(result)
    }

    /// Like [`find`](Self::find) but consumes nothing: (pattern, start, end).
    pub fn peek(&self, cursor: &mut Cursor, patterns: &[&Regex]) -> Option<(usize, usize, usize)> {
        let end_abs = self.base + self.buf.len() as u64;
        // the streaming search first: most reads cannot complete a match
        if let Some(stream) = cursor.stream.get_or_insert_with(|| Stream::new(patterns).map(Box::new))
            && stream.advance(&self.buf, self.base) == Some(false)
        {
            cursor.scanned_to = end_abs;
            return None;
        }
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

    /// Text over a small alphabet, so the patterns below match (and nearly match) often.
    fn busy_text() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(proptest::sample::select(b"abcdxyLOGIN: login#09\n".to_vec()), 0..600)
    }

    /// The look-back search on its own (the streaming search switched off): the reference.
    fn reference_cursor() -> Cursor {
        Cursor {
            stream: Some(None),
            ..Cursor::default()
        }
    }

    /// Text dense in CSI sequences, broken ones included.
    fn csi_bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            proptest::sample::select(b"\x1b[[[;;0123mmHJ?\n\r\x18 aZ\x7f\x80".to_vec()),
            0..1024,
        )
    }

    proptest! {
        /// Whole CSI sequences skipped in one go give what the state machine gives byte by
        /// byte (one byte per push never takes the shortcut).
        #[test]
        fn skipping_whole_csi_sequences_changes_nothing(input in csi_bytes()) {
            let mut whole = Vec::new();
            AnsiStripper::default().push(&input, &mut whole);
            let mut bytewise = Vec::new();
            let mut s = AnsiStripper::default();
            for b in &input {
                s.push(std::slice::from_ref(b), &mut bytewise);
            }
            prop_assert_eq!(whole, bytewise);
        }

        /// The streaming search finds exactly what the look-back search finds, match by
        /// match, however the text is chunked: literal prefixes, classes, alternations,
        /// case-insensitive and end-anchored patterns, and one with no literal prefix.
        #[test]
        fn the_streaming_search_finds_what_the_look_back_search_finds(
            text in busy_text(),
            cuts in proptest::collection::vec(any::<usize>(), 0..24),
            set in 0usize..4,
        ) {
            let sets: [&[&str]; 4] = [
                &["login: $", "ab+c", "x[0-9]{2}"],
                &["(?i)login: ", "#\\n", "d(a|b)*y"],
                &["[a-d]+x", "(?m)^# ?$"],
                &["LOGIN", "in: a", "(?i)IN: "],
            ];
            let pats: Vec<Regex> = sets[set].iter().map(|p| Regex::new(p).expect("regex")).collect();
            let refs: Vec<&Regex> = pats.iter().collect();
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (text.len() + 1)).collect();
            points.sort_unstable();
            let mut got = (MatchBuffer::default(), Cursor::default(), Vec::new());
            let mut want = (MatchBuffer::default(), reference_cursor(), Vec::new());
            let mut at = 0;
            for p in points.into_iter().chain([text.len()]) {
                for (m, c, out) in [&mut got, &mut want] {
                    m.push(&text[at..p]);
                    while let Some(f) = m.find(c, &refs) {
                        out.push((f.index, f.text));
                    }
                }
                at = p;
            }
            prop_assert_eq!(&got.2, &want.2);
        }

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
