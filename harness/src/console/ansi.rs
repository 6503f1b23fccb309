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

#[derive(Debug, Default)]
pub struct AnsiStripper {
    state: State,
}

impl AnsiStripper {
    /// Appends the visible bytes of `input` to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            self.state = match (self.state, b) {
                (State::Text, 0x1b) => State::Esc,
                (State::Text, b'\r' | 0) => State::Text,
                (State::Text, _) => {
                    out.push(b);
                    State::Text
                }
                (State::Esc, b'[') => State::Csi,
                (State::Esc, b']' | b'P' | b'X' | b'^' | b'_') => State::Str,
                // ESC ( B and friends: one intermediate, then the final byte
                (State::Esc, 0x20..=0x2f) => State::Esc,
                (State::Esc, _) => State::Text,
                (State::Csi, 0x40..=0x7e) => State::Text,
                (State::Csi, _) => State::Csi,
                (State::Str, 0x07) => State::Text,
                (State::Str, 0x1b) => State::StrEsc,
                (State::Str, _) => State::Str,
                (State::StrEsc, b'\\') => State::Text,
                (State::StrEsc, _) => State::Str,
            };
        }
    }
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
}
