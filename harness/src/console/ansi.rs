//! A streaming filter that removes ANSI escape sequences and carriage returns, so that
//! patterns match what a person sees. Chunks may split a sequence anywhere.

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Text,
    Esc,
    Csi,
    /// OSC, DCS, SOS, PM, APC: strings ended by BEL or ESC \.
    Str,
    StrEsc,
}

/// A control sequence longer than this is not one: it is dropped and what follows is text
/// again (terminals cap their parameter buffers the same way).
const MAX_CSI: usize = 64;
/// An OSC/DCS/... string longer than this ends: a device cannot make the matcher blind by
/// opening one at boot and never closing it.
const MAX_STR: usize = 4096;

/// The bytes that can start or end a sequence (ESC, CR, NUL, CAN, SUB): one table load a
/// byte in the scan over plain text.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[0x1b] = true;
    t[b'\r' as usize] = true;
    t[0] = true;
    t[0x18] = true;
    t[0x1a] = true;
    t
};

/// The length of a CSI sequence at the start of `b` (ESC, `[`, parameter and intermediate
/// bytes, one final byte), if all of it is there and within MAX_CSI; else None (the state
/// machine takes it byte by byte).
fn whole_csi(b: &[u8]) -> Option<usize> {
    if b.len() < 3 || b[0] != 0x1b || b[1] != b'[' {
        return None;
    }
    let body = &b[2..b.len().min(MAX_CSI + 1)];
    let n = body.iter().position(|c| !matches!(c, 0x20..=0x3f))?;
    matches!(body[n], 0x40..=0x7e).then_some(n + 3)
}

#[derive(Debug, Default)]
pub struct AnsiStripper {
    state: State,
    /// Bytes consumed by the sequence in progress.
    len: usize,
}

impl AnsiStripper {
    /// Forgets any sequence in progress (a boundary between tests).
    pub fn reset(&mut self) {
        self.state = State::Text;
        self.len = 0;
    }

    /// Appends the visible bytes of `input` to `out`. Plain text is copied a span at a time;
    /// the state machine runs only from a byte that can start or end a sequence.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Text {
                let rest = &input[i..];
                let n = rest.iter().position(|&b| SPECIAL[b as usize]).unwrap_or(rest.len());
                out.extend_from_slice(&rest[..n]);
                i += n;
                if i == input.len() {
                    break;
                }
                // a whole CSI sequence in this chunk (colours: ESC [ 1 ; 3 2 m) is skipped
                // in one go; what the state machine would do byte by byte, it outputs nothing
                if let Some(len) = whole_csi(&input[i..]) {
                    i += len;
                    continue;
                }
            }
            self.step(input[i], out);
            i += 1;
        }
    }

    /// One byte through the state machine.
    fn step(&mut self, b: u8, out: &mut Vec<u8>) {
        {
            // CAN and SUB abort any sequence, as in a terminal
            if matches!(b, 0x18 | 0x1a) {
                self.reset();
                return;
            }
            if self.state != State::Text {
                self.len += 1;
                let cap = if matches!(self.state, State::Str | State::StrEsc) {
                    MAX_STR
                } else {
                    MAX_CSI
                };
                if self.len > cap {
                    self.reset();
                }
            }
            self.state = match (self.state, b) {
                (State::Text, 0x1b) => State::Esc,
                (State::Text, b'\r' | 0) => State::Text,
                (State::Text, _) => {
                    out.push(b);
                    State::Text
                }
                (State::Esc, b'[') => State::Csi,
                (State::Esc, b']' | b'P' | b'X' | b'^' | b'_') => State::Str,
                (State::Esc, 0x1b) => State::Esc,
                // ESC ( B and friends: one intermediate, then the final byte
                (State::Esc, 0x20..=0x2f) => State::Esc,
                (State::Esc, _) => State::Text,
                (State::Csi, 0x40..=0x7e) => State::Text,
                // ESC inside a CSI starts a new sequence; a newline ends a broken one
                (State::Csi, 0x1b) => State::Esc,
                (State::Csi, b'\n') => {
                    out.push(b);
                    State::Text
                }
                (State::Csi, _) => State::Csi,
                (State::Str, 0x07) => State::Text,
                (State::Str, 0x1b) => State::StrEsc,
                (State::Str, _) => State::Str,
                (State::StrEsc, b'\\') => State::Text,
                // ESC that is not ST cancels the string and begins a new sequence
                (State::StrEsc, b'[') => State::Csi,
                (State::StrEsc, b']' | b'P' | b'X' | b'^' | b'_') => State::Str,
                (State::StrEsc, 0x1b) => State::Esc,
                (State::StrEsc, 0x20..=0x2f) => State::Esc,
                (State::StrEsc, _) => State::Text,
            };
            if self.state == State::Text || self.state == State::Esc && b == 0x1b {
                self.len = 0;
            }
        }
    }
}

/// `b` without CSI sequences, carriage returns and NULs, but with the text of OSC, DCS, SOS,
/// PM and APC strings kept (only their opening and closing bytes removed), whether or not
/// they were closed: what a device hid from a terminal is visible here. Negative windows
/// judge this view as well as the stripped text.
pub fn strip_keeping_strings(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            0x1b => match b.get(i + 1) {
                Some(b'[') => {
                    // a CSI: parameters and intermediates, then its final byte
                    let body = &b[i + 2..];
                    let n = body
                        .iter()
                        .take(MAX_CSI)
                        .position(|c| !matches!(c, 0x20..=0x3f))
                        .unwrap_or(body.len().min(MAX_CSI));
                    let fin = body.get(n).is_some_and(|c| matches!(c, 0x40..=0x7e));
                    i += 2 + n + usize::from(fin);
                }
                // a string's opening (its text is kept) or ST (its end)
                Some(b']' | b'P' | b'X' | b'^' | b'_' | b'\\') => i += 2,
                Some(0x20..=0x2f) => i += 3,
                Some(_) => i += 2,
                None => i += 1,
            },
            b'\r' | 0 | 0x07 | 0x18 | 0x1a => i += 1,
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip_chunks(chunks: &[&[u8]]) -> String {
        let mut s = AnsiStripper::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn removes_colour_cursor_osc_and_bracketed_paste() {
        let s = strip_chunks(&[b"\x1b[1;32mOK\x1b[0m \x1b]0;title\x07login:\x1b[?2004h \r\n"]);
        assert_eq!(s, "OK login: \n");
    }

    #[test]
    fn sequences_split_across_chunks() {
        assert_eq!(strip_chunks(&[b"a\x1b", b"[3", b"1mb\x1b]2;x\x1b", b"\\c"]), "abc");
    }

    #[test]
    fn an_unterminated_string_cannot_blind_the_matcher() {
        // DCS opened at boot and never closed: the text after the cap is visible again
        let mut junk = b"\x1bPq stray".to_vec();
        junk.extend(std::iter::repeat_n(b'#', 5000));
        junk.extend_from_slice(b"login: ");
        let s = strip_chunks(&[&junk]);
        assert!(s.ends_with("login: "), "{:?}", &s[s.len().saturating_sub(40)..]);
    }

    #[test]
    fn control_strings_opened_up_show_what_they_hid() {
        assert_eq!(strip_keeping_strings(b"\x1bPlogin: "), b"login: ".to_vec());
        assert_eq!(
            strip_keeping_strings(b"a\x1b]0;x\x07b\x1b[1mc\r\n"),
            b"a0;xbc\n".to_vec()
        );
        assert_eq!(strip_keeping_strings(b"\x1b]2;\x1b\\# "), b"2;# ".to_vec());
        // a CSI cut off at the end consumes only itself
        assert_eq!(strip_keeping_strings(b"ok\x1b[12"), b"ok".to_vec());
    }

    #[test]
    fn can_sub_and_a_new_esc_resynchronise() {
        assert_eq!(strip_chunks(&[b"\x1b]0;title\x18visible"]), "visible");
        assert_eq!(strip_chunks(&[b"\x1b[12;\x1avisible"]), "visible");
        // ESC inside OSC that is not ST: the string ends, the new sequence is parsed
        assert_eq!(strip_chunks(&[b"\x1b]0;t\x1b[31mred"]), "red");
        // a CSI broken by a newline does not swallow the next line
        assert_eq!(strip_chunks(&[b"\x1b[12\nnext"]), "\nnext");
        // an endless CSI is capped
        let mut long = b"\x1b[".to_vec();
        long.extend(std::iter::repeat_n(b'1', 100));
        long.extend_from_slice(b"ok");
        assert!(strip_chunks(&[&long]).ends_with("ok"));
    }

    #[test]
    fn every_c0_c1_osc_dcs_edge_leaves_plain_text_intact() {
        for seq in [
            &b"\x1b[0m"[..],
            b"\x1b[?25l",
            b"\x1b]52;c;SGVsbG8=\x07",
            b"\x1b]8;;http://x\x1b\\",
            b"\x1bPq#0;2;0;0;0\x1b\\",
            b"\x1bX sos \x1b\\",
            b"\x1b^ pm \x1b\\",
            b"\x1b_ apc \x1b\\",
            b"\x1b(B",
            b"\x1b7",
            b"\x18",
            b"\x1a",
        ] {
            let mut input = b"before ".to_vec();
            input.extend_from_slice(seq);
            input.extend_from_slice(b"after");
            let s = strip_chunks(&[&input]);
            assert_eq!(s, "before after", "{seq:?}");
        }
    }
}
