//! A console exported over the network, as labs export a board's UART (ser2net, a terminal
//! server, labgrid's exporters): `tcp://HOST:PORT` is the raw byte stream; `rfc2217://HOST:PORT`
//! is telnet with the COM-PORT option (RFC 2217), through which certbench sets the line's
//! baud rate, 8 data bits, no parity, one stop bit and no flow control on the far serial port,
//! and reads back what the server set. Like the serial driver, a reader keeps every byte,
//! reports a dropped connection as the console lost (the board's UART went away, or the
//! exporter did) and connects again.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::serial::{wait_readable, wake_fd};
use super::{Console, ConsoleTransport, Feed};

use crate::model::console_port::PortMode;

const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const SE: u8 = 240;
const BINARY: u8 = 0;
const ECHO: u8 = 1;
const SGA: u8 = 3;
/// RFC 2217's option.
const COM_PORT: u8 = 44;
const SET_BAUDRATE: u8 = 1;
const SET_DATASIZE: u8 = 2;
const SET_PARITY: u8 = 3;
const SET_STOPSIZE: u8 = 4;
const SET_CONTROL: u8 = 5;
/// A server answers command N with N + 100.
const ANSWER: u8 = 100;

/// The telnet side of a connection: splits what the server sends into data, the answers
/// certbench owes it, and what its COM-PORT answers said.
#[derive(Debug, Default)]
pub struct Telnet {
    state: State,
    sub: Vec<u8>,
    /// Options we agreed to (so a repeated request is not answered twice: no loops).
    agreed_local: Vec<u8>,
    agreed_remote: Vec<u8>,
    /// The COM-PORT settings were sent.
    comport_sent: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Data,
    Iac,
    Verb(u8),
    Sub,
    SubIac,
}

/// What the server's bytes meant.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The console's bytes.
    pub data: Vec<u8>,
    /// To send back.
    pub reply: Vec<u8>,
    /// What the server said about the serial line (for the transcript).
    pub notes: Vec<String>,
}

impl Telnet {
    /// What certbench says on connecting: it will do COM-PORT and binary both ways.
    pub fn hello(&mut self) -> Vec<u8> {
        self.agreed_local.extend([COM_PORT, BINARY, SGA]);
        self.agreed_remote.extend([BINARY, SGA]);
        vec![
            IAC, WILL, COM_PORT, IAC, WILL, BINARY, IAC, DO, BINARY, IAC, WILL, SGA, IAC, DO, SGA,
        ]
    }

    /// The line settings (sent once the server agreed to COM-PORT).
    pub fn settings(&mut self, baud: u32) -> Vec<u8> {
        self.comport_sent = true;
        let mut v = Vec::new();
        let mut sub = |cmd: u8, value: &[u8]| {
            v.extend([IAC, SB, COM_PORT, cmd]);
            for &b in value {
                v.push(b);
                if b == IAC {
                    v.push(IAC);
                }
            }
            v.extend([IAC, SE]);
        };
        sub(SET_BAUDRATE, &baud.to_be_bytes());
        sub(SET_DATASIZE, &[8]);
        sub(SET_PARITY, &[1]); // none
        sub(SET_STOPSIZE, &[1]); // one
        sub(SET_CONTROL, &[1]); // no flow control
        v
    }

    /// Feeds received bytes (any split); `baud` is what the settings ask for.
    pub fn feed(&mut self, bytes: &[u8], baud: u32) -> Parsed {
        let mut out = Parsed::default();
        for &b in bytes {
            self.state = match (self.state, b) {
                (State::Data, IAC) => State::Iac,
                (State::Data, b) => {
                    out.data.push(b);
                    State::Data
                }
                (State::Iac, IAC) => {
                    out.data.push(IAC);
                    State::Data
                }
                (State::Iac, v @ (DO | DONT | WILL | WONT)) => State::Verb(v),
                (State::Iac, SB) => {
                    self.sub.clear();
                    State::Sub
                }
                (State::Iac, _) => State::Data, // NOP, GA, BRK...: nothing for a console
                (State::Verb(v), opt) => {
                    self.negotiate(v, opt, baud, &mut out);
                    State::Data
                }
                (State::Sub, IAC) => State::SubIac,
                (State::Sub, b) => {
                    if self.sub.len() < 256 {
                        self.sub.push(b);
                    }
                    State::Sub
                }
                (State::SubIac, IAC) => {
                    if self.sub.len() < 256 {
                        self.sub.push(IAC);
                    }
                    State::Sub
                }
                (State::SubIac, SE) => {
                    self.subnegotiation(&mut out);
                    State::Data
                }
                (State::SubIac, _) => State::Data,
            };
        }
        out
    }

    fn negotiate(&mut self, verb: u8, opt: u8, baud: u32, out: &mut Parsed) {
        match verb {
            DO if [COM_PORT, BINARY, SGA].contains(&opt) => {
                if !self.agreed_local.contains(&opt) {
                    self.agreed_local.push(opt);
                    out.reply.extend([IAC, WILL, opt]);
                }
                if opt == COM_PORT && !self.comport_sent {
                    let s = self.settings(baud);
                    out.reply.extend(s);
                }
            }
            DO => out.reply.extend([IAC, WONT, opt]),
            WILL if [BINARY, SGA, ECHO].contains(&opt) && !self.agreed_remote.contains(&opt) => {
                self.agreed_remote.push(opt);
                out.reply.extend([IAC, DO, opt]);
            }
            WILL if [BINARY, SGA, ECHO].contains(&opt) => {} // agreed already: no loop
            WILL => out.reply.extend([IAC, DONT, opt]),
            DONT if opt == COM_PORT => {
                out.notes
                    .push("the terminal server refuses RFC 2217: the line's baud rate was not set".into());
            }
            _ => {}
        }
    }

    fn subnegotiation(&mut self, out: &mut Parsed) {
        let s = &self.sub;
        if s.len() < 2 || s[0] != COM_PORT {
            return;
        }
        let value = &s[2..];
        let said = match s[1].checked_sub(ANSWER) {
            Some(SET_BAUDRATE) if value.len() == 4 => {
                format!("baud {}", u32::from_be_bytes([value[0], value[1], value[2], value[3]]))
            }
            Some(SET_DATASIZE) if value.len() == 1 => format!("{} data bits", value[0]),
            Some(SET_PARITY) if value.len() == 1 => format!("parity {}", parity(value[0])),
            Some(SET_STOPSIZE) if value.len() == 1 => format!("stop bits {}", stop_bits(value[0])),
            Some(SET_CONTROL) if value.len() == 1 => format!("flow control {}", control(value[0])),
            _ => return,
        };
        out.notes
            .push(format!("the terminal server set the serial line: {said}"));
    }
}

fn parity(v: u8) -> &'static str {
    match v {
        1 => "none",
        2 => "odd",
        3 => "even",
        4 => "mark",
        5 => "space",
        _ => "?",
    }
}

fn stop_bits(v: u8) -> &'static str {
    match v {
        1 => "1",
        2 => "2",
        3 => "1.5",
        _ => "?",
    }
}

fn control(v: u8) -> &'static str {
    match v {
        1 => "none",
        2 => "XON/XOFF",
        3 => "hardware",
        _ => "?",
    }
}

/// Doubles IAC in console bytes going out over telnet.
fn escape(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !bytes.contains(&IAC) {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let mut v = Vec::with_capacity(bytes.len() + 4);
    for &b in bytes {
        v.push(b);
        if b == IAC {
            v.push(IAC);
        }
    }
    std::borrow::Cow::Owned(v)
}

#[derive(Debug)]
pub struct NetworkTransport {
    url: String,
    mode: PortMode,
    writer: Arc<Mutex<Option<TcpStream>>>,
    stop: Arc<AtomicBool>,
    wake: Option<Arc<std::os::fd::OwnedFd>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Connects to `addr` and starts reading; until the exporter answers, it is tried again.
pub fn connect(mode: PortMode, addr: &str, baud: u32, feed: Arc<Feed>) -> Console {
    let url = format!(
        "{}://{addr}",
        match mode {
            PortMode::Raw => "tcp",
            PortMode::Rfc2217 => "rfc2217",
        }
    );
    let writer: Arc<Mutex<Option<TcpStream>>> = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let wake = wake_fd();
    let t = NetworkTransport {
        url: url.clone(),
        mode,
        writer: writer.clone(),
        stop: stop.clone(),
        wake: wake.clone(),
        thread: Mutex::new(None),
    };
    let thread_feed = feed.clone();
    let addr = addr.to_string();
    let handle = std::thread::Builder::new()
        .name("console-reader".into())
        .spawn(move || {
            reader(
                &Line { url, addr, mode, baud },
                &thread_feed,
                &writer,
                &stop,
                wake.as_deref(),
            )
        })
        .ok();
    *t.thread.lock().unwrap_or_else(|p| p.into_inner()) = handle;
    Console::new(feed, Arc::new(t))
}

struct Line {
    url: String,
    addr: String,
    mode: PortMode,
    baud: u32,
}

fn open(addr: &str) -> std::io::Result<TcpStream> {
    use std::net::ToSocketAddrs;
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, format!("{addr} has no address"));
    for a in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, Duration::from_secs(2)) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn reader(
    line: &Line,
    feed: &Feed,
    writer: &Mutex<Option<TcpStream>>,
    stop: &AtomicBool,
    wake: Option<&std::os::fd::OwnedFd>,
) {
    let mut buf = vec![0u8; 64 << 10];
    let mut last_error: Option<String> = None;
    while !stop.load(Ordering::Relaxed) {
        let mut sock = match open(&line.addr) {
            Ok(s) => s,
            Err(e) => {
                let msg = e.to_string();
                if last_error.as_deref() != Some(&msg) {
                    feed.event(format!("console {} not available: {msg}", line.url), Some(false));
                    last_error = Some(msg);
                }
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        last_error = None;
        let mut telnet = (line.mode == PortMode::Rfc2217).then(Telnet::default);
        let hello = telnet.as_mut().map(Telnet::hello).unwrap_or_default();
        if !hello.is_empty() && sock.write_all(&hello).is_err() {
            continue;
        }
        match sock.try_clone() {
            Ok(w) => *writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(w),
            Err(e) => feed.event(format!("console {}: cannot clone for writing: {e}", line.url), None),
        }
        feed.event(
            format!("console {} connected (serial line at {} baud)", line.url, line.baud),
            Some(true),
        );
        let why = loop {
            if stop.load(Ordering::Relaxed) {
                break None;
            }
            match wait_readable(&sock, wake) {
                Ok(true) => {}
                Ok(false) => break None,
                Err(e) => break Some(e.to_string()),
            }
            match sock.read(&mut buf) {
                Ok(0) => break Some("the exporter closed the connection".to_string()),
                Ok(n) => match telnet.as_mut() {
                    None => feed.rx(&buf[..n]),
                    Some(t) => {
                        let p = t.feed(&buf[..n], line.baud);
                        if !p.reply.is_empty() {
                            let mut g = writer.lock().unwrap_or_else(|p| p.into_inner());
                            if let Some(w) = g.as_mut() {
                                let _ = w.write_all(&p.reply);
                            }
                        }
                        for n in p.notes {
                            feed.event(format!("console {}: {n}", line.url), None);
                        }
                        if !p.data.is_empty() {
                            feed.rx(&p.data);
                        }
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => break Some(e.to_string()),
            }
        };
        *writer.lock().unwrap_or_else(|p| p.into_inner()) = None;
        if let Some(why) = why {
            feed.event(format!("console {} lost: {why}", line.url), Some(false));
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl ConsoleTransport for NetworkTransport {
    fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut g = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        match g.as_mut() {
            Some(s) => match self.mode {
                PortMode::Raw => s.write_all(bytes),
                PortMode::Rfc2217 => s.write_all(&escape(bytes)),
            },
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                format!("console {} is not connected", self.url),
            )),
        }
    }

    fn close(&self) {
        use std::os::fd::AsRawFd;
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = &self.wake {
            let one = 1u64.to_ne_bytes();
            // SAFETY: an 8-byte write to the eventfd this transport owns
            let _ = unsafe { libc::write(w.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        }
        if let Some(s) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        if let Some(h) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::console_port::parse;

    #[test]
    fn addresses() {
        assert_eq!(parse("/dev/ttyUSB0"), None);
        assert_eq!(
            parse("tcp://exporter:2000"),
            Some(Ok((PortMode::Raw, "exporter:2000".into())))
        );
        assert_eq!(
            parse("rfc2217://[::1]:4001"),
            Some(Ok((PortMode::Rfc2217, "[::1]:4001".into())))
        );
        assert!(matches!(parse("rfc2217://exporter"), Some(Err(_))));
        assert!(matches!(parse("tcp://:99"), Some(Err(_))));
        assert!(matches!(parse("tcp://h:70000"), Some(Err(_))));
    }

    /// Data with IAC doubled, negotiation and a COM-PORT answer, cut at every position:
    /// the same data, replies and notes whatever the split.
    #[test]
    fn telnet_parsing_does_not_depend_on_how_reads_split() {
        let mut stream = vec![b'a', IAC, IAC, b'b', IAC, DO, COM_PORT, IAC, WILL, ECHO, IAC, DO, 24];
        stream.extend([IAC, SB, COM_PORT, ANSWER + SET_BAUDRATE, 0, 1, 0xC2, 0, IAC, SE]);
        stream.extend([IAC, SB, COM_PORT, ANSWER + SET_PARITY, 1, IAC, SE, b'c']);
        let whole = {
            let mut t = Telnet::default();
            t.hello();
            t.feed(&stream, 115_200)
        };
        assert_eq!(whole.data, vec![b'a', IAC, b'b', b'c']);
        assert_eq!(
            whole.notes,
            vec![
                "the terminal server set the serial line: baud 115200".to_string(),
                "the terminal server set the serial line: parity none".to_string()
            ]
        );
        // COM-PORT already agreed in hello: only the settings; ECHO accepted; 24 refused
        let mut want = Telnet::default().settings(115_200);
        want.extend([IAC, DO, ECHO, IAC, WONT, 24]);
        assert_eq!(whole.reply, want);
        for cut in 1..stream.len() {
            let mut t = Telnet::default();
            t.hello();
            let mut a = t.feed(&stream[..cut], 115_200);
            let b = t.feed(&stream[cut..], 115_200);
            a.data.extend(b.data);
            a.reply.extend(b.reply);
            a.notes.extend(b.notes);
            assert_eq!(a, whole, "split at {cut}");
        }
    }

    #[test]
    fn settings_escape_an_iac_byte_in_the_baud_rate() {
        // 0x0000FF00 = 65280 carries an IAC byte: doubled inside the subnegotiation
        let s = Telnet::default().settings(65_280);
        assert_eq!(&s[..10], &[IAC, SB, COM_PORT, SET_BAUDRATE, 0, 0, IAC, IAC, 0, IAC]);
        assert_eq!(&escape(&[1, IAC, 2])[..], &[1, IAC, IAC, 2]);
    }
}
