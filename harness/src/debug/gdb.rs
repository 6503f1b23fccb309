//! A GDB remote serial protocol client (TCP `host:port` or `unix:/path`), for benches that
//! expose the debug port through OpenOCD, pyOCD, a J-Link GDB server, a Black Magic Probe
//! or QEMU's gdbstub: memory reads, halt/continue, registers, reset via `monitor`.

use std::io::{Read, Write};
use std::time::Duration;

use super::port::{Abilities, DebugError, DebugPort};

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

pub struct GdbRemote {
    address: String,
    timeout: Duration,
    conn: Option<Box<dyn Stream>>,
    /// The server's `monitor` (qRcmd) answers, when it has any.
    monitor: Option<bool>,
    /// Console output (`O` packets) of the last monitor command.
    output: String,
}

impl std::fmt::Debug for GdbRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GdbRemote({})", self.address)
    }
}

fn checksum(data: &[u8]) -> u8 {
    data.iter().fold(0u8, |a, b| a.wrapping_add(*b))
}

fn unhex(data: &[u8]) -> String {
    let bytes: Vec<u8> = data
        .chunks(2)
        .filter_map(|c| u8::from_str_radix(&String::from_utf8_lossy(c), 16).ok())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The largest packet body read from the server, before and after run-length decoding.
const MAX_PACKET: usize = 1 << 20;
/// Packets the server may send (console output, stop notices) before it answers a request.
const MAX_UNSOLICITED: usize = 4096;
/// Console output kept from one monitor command.
const MAX_OUTPUT: usize = 64 << 10;

/// Undoes the protocol's run-length encoding (`X*n` repeats X n-29 more times); stops at
/// MAX_PACKET bytes, so a hostile server cannot make a small packet expand without bound.
fn unrle(data: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() && out.len() < MAX_PACKET {
        if data[i] == b'*' && i + 1 < data.len() && !out.is_empty() {
            let n = data[i + 1].saturating_sub(29) as usize;
            let last = *out.last().unwrap_or(&b'0');
            out.extend(std::iter::repeat_n(last, n));
            i += 2;
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

impl GdbRemote {
    pub fn new(address: &str, timeout: Duration) -> Self {
        Self {
            address: address.to_string(),
            timeout,
            conn: None,
            monitor: None,
            output: String::new(),
        }
    }

    /// Connects, retrying while nobody listens yet: a GDB server the lab's setup starts (QEMU,
    /// OpenOCD, a J-Link server) may still be coming up — its Unix socket can exist a moment
    /// before it listens. Gives up after the driver's timeout, saying how long it tried.
    fn connect(&mut self) -> Result<(), DebugError> {
        let started = std::time::Instant::now();
        loop {
            match self.connect_once() {
                Ok(conn) => {
                    self.conn = Some(conn);
                    return Ok(());
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
                    ) && started.elapsed() + Duration::from_millis(50) < self.timeout =>
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(DebugError::Unavailable(format!(
                        "cannot connect to the GDB server at {} (tried for {:.1} s): {e}",
                        self.address,
                        started.elapsed().as_secs_f64()
                    )));
                }
            }
        }
    }

    fn connect_once(&self) -> std::io::Result<Box<dyn Stream>> {
        Ok(if let Some(path) = self.address.strip_prefix("unix:") {
            let s = std::os::unix::net::UnixStream::connect(path)?;
            s.set_read_timeout(Some(self.timeout))?;
            Box::new(s)
        } else {
            use std::net::ToSocketAddrs;
            let addr = self.address.to_socket_addrs()?.next().ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "the address resolves to nothing")
            })?;
            let s = std::net::TcpStream::connect_timeout(&addr, self.timeout)?;
            s.set_read_timeout(Some(self.timeout))?;
            let _ = s.set_nodelay(true);
            Box::new(s)
        })
    }

    fn io(&mut self) -> Result<&mut Box<dyn Stream>, DebugError> {
        self.conn
            .as_mut()
            .ok_or_else(|| DebugError::Unavailable("not connected to the GDB server".into()))
    }

    fn lost(e: std::io::Error) -> DebugError {
        DebugError::Lost(format!("GDB server: {e}"))
    }

    fn send(&mut self, body: &str) -> Result<(), DebugError> {
        let pkt = format!("${body}#{:02x}", checksum(body.as_bytes()));
        self.io()?.write_all(pkt.as_bytes()).map_err(Self::lost)
    }

    fn byte(&mut self) -> Result<u8, DebugError> {
        let mut b = [0u8; 1];
        match self.io()?.read(&mut b) {
            Ok(0) => Err(DebugError::Lost("the GDB server closed the connection".into())),
            Ok(_) => Ok(b[0]),
            Err(e) => Err(Self::lost(e)),
        }
    }

    /// Reads one packet (acknowledging it); skips acks and notifications.
    fn recv(&mut self) -> Result<Vec<u8>, DebugError> {
        loop {
            let b = self.byte()?;
            if b != b'$' {
                continue; // '+', '-', or noise
            }
            let mut body = Vec::new();
            loop {
                let c = self.byte()?;
                if c == b'#' {
                    break;
                }
                body.push(c);
                if body.len() > MAX_PACKET {
                    return Err(DebugError::Lost("oversized packet from the GDB server".into()));
                }
            }
            let (h, l) = (self.byte()?, self.byte()?);
            let sum = u8::from_str_radix(&String::from_utf8_lossy(&[h, l]), 16).unwrap_or(0);
            if sum != checksum(&body) {
                self.io()?.write_all(b"-").map_err(Self::lost)?;
                continue;
            }
            self.io()?.write_all(b"+").map_err(Self::lost)?;
            return Ok(unrle(&body));
        }
    }

    /// A request and its reply, skipping console output (`O...`) packets and, unless a
    /// stop reply is what is asked for, stop notifications (QEMU sends one on connect).
    fn ask(&mut self, body: &str) -> Result<Vec<u8>, DebugError> {
        let wants_stop = body == "?";
        self.send(body)?;
        for _ in 0..MAX_UNSOLICITED {
            let r = self.recv()?;
            if r.first() == Some(&b'O') && r.len() > 1 && r != b"OK" {
                if self.output.len() < MAX_OUTPUT {
                    self.output.push_str(&unhex(&r[1..]));
                }
                continue;
            }
            let is_stop =
                matches!(r.first(), Some(b'T' | b'S')) && r.len() >= 3 && r[1..3].iter().all(u8::is_ascii_hexdigit);
            if is_stop && !wants_stop {
                continue;
            }
            return Ok(r);
        }
        Err(DebugError::Lost(format!(
            "the GDB server sent {MAX_UNSOLICITED} packets without answering `{body}`"
        )))
    }

    /// Runs a `monitor` command; Ok(false) when the server has no monitor or does not
    /// know the command (its output says so).
    pub fn monitor(&mut self, cmd: &str) -> Result<bool, DebugError> {
        self.output.clear();
        let r = self.ask(&format!("qRcmd,{}", crate::util::hex(cmd.as_bytes())))?;
        if r != b"OK" && !r.is_empty() && !r.starts_with(b"E") {
            self.output.push_str(&unhex(&r)); // output as the reply itself
        }
        let said = self.output.to_ascii_lowercase();
        let refused = ["unknown command", "invalid command", "not found", "error"]
            .iter()
            .any(|w| said.contains(w));
        let ok = !r.is_empty() && !r.starts_with(b"E") && !refused;
        self.monitor = Some(ok);
        Ok(ok)
    }

    /// The general registers, as the server's hex blob.
    pub fn registers(&mut self) -> Result<String, DebugError> {
        let r = self.ask("g")?;
        if r.starts_with(b"E") {
            return Err(DebugError::Refused(format!(
                "register read answered {}",
                String::from_utf8_lossy(&r)
            )));
        }
        Ok(String::from_utf8_lossy(&r).into_owned())
    }
}

impl DebugPort for GdbRemote {
    fn describe(&self) -> String {
        format!("GDB server {}", self.address)
    }

    fn abilities(&self) -> Abilities {
        Abilities {
            halt: true,
            resume: true,
            reset: self.monitor.unwrap_or(true),
            read: true,
            write: true,
            lock_state: false,
        }
    }

    fn attach(&mut self) -> Result<String, DebugError> {
        self.connect()?;
        self.io()?.write_all(b"+").map_err(Self::lost)?;
        let sup = self.ask("qSupported:swbreak+;hwbreak+")?;
        // the stop reason: the server halts the target for the debugger
        let why = self.ask("?")?;
        if why.starts_with(b"E") {
            return Err(DebugError::Refused(format!(
                "the GDB server reports {}",
                String::from_utf8_lossy(&why)
            )));
        }
        let sup = String::from_utf8_lossy(&sup);
        let size = sup
            .split(';')
            .find_map(|f| f.strip_prefix("PacketSize="))
            .unwrap_or("?");
        Ok(format!(
            "the target behind {} (stop reply {}, packet size {size})",
            self.address,
            String::from_utf8_lossy(&why)
        ))
    }

    fn halt(&mut self) -> Result<(), DebugError> {
        // already halted when attached (stop reply); ^C stops a running target
        self.io()?.write_all(&[0x03]).map_err(Self::lost)?;
        let _ = self.ask("?")?;
        Ok(())
    }

    fn resume(&mut self) -> Result<(), DebugError> {
        // detach lets the target run on and ends the session cleanly
        if self.conn.is_some() {
            let r = self.ask("D");
            self.conn = None;
            r?;
        }
        Ok(())
    }

    fn reset(&mut self) -> Result<(), DebugError> {
        // OpenOCD, pyOCD, J-Link: `monitor reset`; QEMU: `monitor system_reset`
        if self.monitor("reset")? || self.monitor("system_reset")? {
            Ok(())
        } else {
            Err(DebugError::Unsupported("reset (the server has no monitor reset)"))
        }
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), DebugError> {
        // `M` in chunks every server takes (a packet of 256 bytes is 512 hex digits)
        for (i, chunk) in data.chunks(256).enumerate() {
            let at = addr + (i * 256) as u64;
            let r = self.ask(&format!("M{at:x},{:x}:{}", chunk.len(), crate::util::hex(chunk)))?;
            if r != b"OK" {
                return Err(DebugError::Refused(format!(
                    "memory write at {at:#x} answered {:?}",
                    String::from_utf8_lossy(&r)
                )));
            }
        }
        Ok(())
    }

    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), DebugError> {
        let r = self.ask(&format!("m{addr:x},{:x}", buf.len()))?;
        if r.starts_with(b"E") || r.is_empty() {
            return Err(DebugError::Refused(format!(
                "memory read at {addr:#x} answered {:?}",
                String::from_utf8_lossy(&r)
            )));
        }
        if r.len() < buf.len() * 2 {
            return Err(DebugError::Refused(format!(
                "memory read at {addr:#x} returned {} of {} bytes",
                r.len() / 2,
                buf.len()
            )));
        }
        // hex digits taken as bytes: a reply that is not ASCII is malformed, never a panic
        let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        for (b, pair) in buf.iter_mut().zip(r.chunks_exact(2)) {
            *b = match (digit(pair[0]), digit(pair[1])) {
                (Some(h), Some(l)) => (h << 4) | l,
                _ => return Err(DebugError::Lost("malformed memory reply".into())),
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rle_and_checksums() {
        assert_eq!(unrle(b"0* "), b"0000");
        assert_eq!(checksum(b"OK"), 0x9a);
    }

    /// A server played from a script: reads come from `input`, writes are discarded.
    struct Scripted(std::io::Cursor<Vec<u8>>);
    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.0.read(buf)
        }
    }
    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn scripted(input: Vec<u8>) -> GdbRemote {
        let mut g = GdbRemote::new("scripted", Duration::from_secs(1));
        g.conn = Some(Box::new(Scripted(std::io::Cursor::new(input))));
        g.monitor = Some(true);
        g
    }

    fn packet(body: &[u8]) -> Vec<u8> {
        let mut p = vec![b'$'];
        p.extend_from_slice(body);
        p.extend_from_slice(format!("#{:02x}", checksum(body)).as_bytes());
        p
    }

    #[test]
    fn a_memory_reply_that_is_not_ascii_is_malformed_not_a_panic() {
        let mut g = scripted(packet("\u{fffd}\u{fffd}ab".as_bytes()));
        let mut buf = [0u8; 2];
        assert!(matches!(g.read(0x2000_0000, &mut buf), Err(DebugError::Lost(_))));
        let mut g = scripted(packet(b"0a1B"));
        g.read(0, &mut buf).expect("hex");
        assert_eq!(buf, [0x0a, 0x1b]);
    }

    #[test]
    fn endless_console_output_is_bounded() {
        let mut input = Vec::new();
        for _ in 0..MAX_UNSOLICITED + 10 {
            input.extend(packet(&[b'O'; 201]));
        }
        let mut g = scripted(input);
        assert!(matches!(g.registers(), Err(DebugError::Lost(m)) if m.contains("without answering")));
        assert!(g.output.len() <= MAX_OUTPUT + 256);
    }

    proptest::proptest! {
        /// Whatever a GDB server sends, every request ends in a value or an error, with
        /// bounded memory.
        #[test]
        fn any_server_bytes_give_an_answer_or_an_error(
            input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096),
            packets in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), 0..8),
        ) {
            let mut all = input.clone();
            for p in &packets {
                all.extend(packet(p));
            }
            let mut g = scripted(all.clone());
            let mut buf = [0u8; 16];
            let _ = g.read(0x2000_0000, &mut buf);
            let _ = g.registers();
            let _ = g.monitor("reset halt");
            let _ = g.attach();
            proptest::prop_assert!(g.output.len() <= MAX_OUTPUT + 8192);
            let body = unrle(&all);
            proptest::prop_assert!(body.len() <= MAX_PACKET + 128);
        }
    }

    #[test]
    fn an_absent_server_is_unavailable_not_a_panic() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = free.local_addr().expect("addr").to_string();
        drop(free);
        let mut g = GdbRemote::new(&addr, Duration::from_secs(1));
        assert!(matches!(g.attach(), Err(DebugError::Unavailable(m)) if m.contains(&addr)));
    }

    #[test]
    fn a_server_that_comes_up_late_is_waited_for_within_the_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("late.sock");
        let later = path.clone();
        let server = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let l = std::os::unix::net::UnixListener::bind(later).expect("bind");
            l.accept().map(|_| ())
        });
        let mut g = GdbRemote::new(&format!("unix:{}", path.display()), Duration::from_secs(5));
        g.connect().expect("connects once the server listens");
        assert!(server.join().expect("server").is_ok());
    }
}
