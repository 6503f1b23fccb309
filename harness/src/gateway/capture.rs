//! Capture of the device's link: every frame on one interface (AF_PACKET, root), written
//! to a pcapng file up to a size limit and fed to the flow table. Past the limit the file
//! stops growing (the report says how many packets it lacks) while the flow table still
//! sees every packet: memory and disk stay bounded, verdicts do not depend on the limit.
//!
//! One packet socket per captured link, and one thread for all of them (issue 33: 256
//! boards on one host, no thread per board): it waits in epoll on every socket and on an
//! eventfd that says a capture was added, asked to flush or to stop.

use super::flows::FlowTable;
use super::pcapng::PcapngWriter;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};

/// Bytes captured of each frame (enough for any Ethernet frame a veth carries).
const SNAPLEN: usize = 65_535;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("interface {0:?} not found")]
    NoInterface(String),
    #[error("cannot open a packet socket (capture needs root or CAP_NET_RAW): {0}")]
    Socket(std::io::Error),
    #[error("cannot bind the packet socket to {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("cannot write the capture file {0}: {1}")]
    File(PathBuf, std::io::Error),
}

/// What the capture saw and saved.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CaptureStats {
    pub interface: String,
    pub packets: u64,
    pub saved_packets: u64,
    pub saved_bytes: u64,
    pub limit_bytes: u64,
    /// Packets seen but not saved because the file reached its limit.
    pub unsaved_packets: u64,
    /// The kernel dropped packets before the capture read them.
    pub kernel_drops: u64,
    pub write_error: Option<String>,
}

/// A running capture; stops (and flushes its file) when dropped or on `stop`.
#[derive(Debug)]
pub struct Capture {
    pub path: PathBuf,
    pub table: Arc<Mutex<FlowTable>>,
    pub stats: Arc<Mutex<CaptureStats>>,
    /// When capturing began (the link's view of the device runs from here).
    pub started: std::time::Instant,
    /// Its number with the capture thread; None once stopped.
    id: Option<u64>,
    /// Flushes asked for, and the last one done with the file's length then (the file is
    /// read while the capture runs: up to that length it holds whole blocks).
    flushes: Arc<(AtomicU64, Mutex<(u64, u64)>)>,
}

struct Fd(i32);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: the descriptor is owned by this value and closed once
        unsafe { libc::close(self.0) };
    }
}

fn open_socket(ifname: &str) -> Result<Fd, CaptureError> {
    let cname = std::ffi::CString::new(ifname).map_err(|_| CaptureError::NoInterface(ifname.into()))?;
    // SAFETY: a valid NUL-terminated string
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        return Err(CaptureError::NoInterface(ifname.into()));
    }
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2) call
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto as i32) };
    if fd < 0 {
        return Err(CaptureError::Socket(std::io::Error::last_os_error()));
    }
    let fd = Fd(fd);
    // SAFETY: sockaddr_ll is plain data; zeroed is a valid value
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = index as i32;
    // SAFETY: sll lives for the call; the length is its size
    let r = unsafe {
        libc::bind(
            fd.0,
            &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if r < 0 {
        return Err(CaptureError::Bind(ifname.into(), std::io::Error::last_os_error()));
    }
    let buf: i32 = 8 << 20;
    // SAFETY: fcntl and setsockopt on the socket just made; option values live for the calls;
    // a failed SO_RCVBUF only means the default stays
    unsafe {
        let flags = libc::fcntl(fd.0, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd.0, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(CaptureError::Socket(std::io::Error::last_os_error()));
        }
        libc::setsockopt(
            fd.0,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &buf as *const i32 as *const libc::c_void,
            4,
        );
    }
    Ok(fd)
}

fn kernel_drops(fd: &Fd) -> u64 {
    // SAFETY: tpacket_stats is plain data; the kernel fills it
    let mut st: libc::tpacket_stats = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tpacket_stats>() as u32;
    // SAFETY: st and len live for the call
    let r = unsafe {
        libc::getsockopt(
            fd.0,
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            &mut st as *mut libc::tpacket_stats as *mut libc::c_void,
            &mut len,
        )
    };
    if r == 0 { st.tp_drops as u64 } else { 0 }
}

/// What the capture thread keeps of one capture.
struct Slot {
    fd: Fd,
    writer: PcapngWriter<std::io::BufWriter<std::fs::File>>,
    limit: u64,
    table: Arc<Mutex<FlowTable>>,
    stats: Arc<Mutex<CaptureStats>>,
    flushes: Arc<(AtomicU64, Mutex<(u64, u64)>)>,
    number: u64,
    drops: u64,
}

enum Command {
    Add(u64, Box<Slot>),
    /// Read what is left, flush, close; then answer.
    Stop(u64, mpsc::Sender<()>),
}

/// The one capture thread: commands go through `tx`, and a write to `wake` makes it look.
struct Service {
    tx: Mutex<mpsc::Sender<Command>>,
    wake: Fd,
}

static SERVICE: OnceLock<Result<Service, String>> = OnceLock::new();
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn service() -> Result<&'static Service, CaptureError> {
    SERVICE
        .get_or_init(|| {
            // SAFETY: plain eventfd(2) and epoll_create1(2) calls; results checked
            let (wake, ep) = unsafe {
                (
                    libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK),
                    libc::epoll_create1(libc::EPOLL_CLOEXEC),
                )
            };
            if wake < 0 || ep < 0 {
                return Err(format!("capture thread: {}", std::io::Error::last_os_error()));
            }
            let (wake, ep) = (Fd(wake), Fd(ep));
            watch(&ep, wake.0, 0).map_err(|e| format!("capture thread: {e}"))?;
            let (tx, rx) = mpsc::channel();
            let wake_raw = wake.0;
            std::thread::Builder::new()
                .name("capture".into())
                .spawn(move || serve(ep, wake_raw, rx))
                .map_err(|e| format!("capture thread: {e}"))?;
            Ok(Service {
                tx: Mutex::new(tx),
                wake,
            })
        })
        .as_ref()
        .map_err(|e| CaptureError::Socket(std::io::Error::other(e.clone())))
}

impl Service {
    fn send_wake(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: an 8-byte write to the eventfd this service owns
        let _ = unsafe { libc::write(self.wake.0, one.as_ptr().cast(), one.len()) };
    }

    fn send(&self, c: Command) -> bool {
        let sent = self.tx.lock().map(|tx| tx.send(c).is_ok()).unwrap_or(false);
        self.send_wake();
        sent
    }
}

/// Registers `fd` with epoll `ep`, its events tagged `key` (0: the wake eventfd).
fn watch(ep: &Fd, fd: i32, key: u64) -> std::io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: key,
    };
    // SAFETY: ev lives for the call
    if unsafe { libc::epoll_ctl(ep.0, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The capture thread: reads every ready socket (a burst at a time), and obeys commands.
fn serve(ep: Fd, wake: i32, rx: mpsc::Receiver<Command>) {
    let mut slots: std::collections::HashMap<u64, Box<Slot>> = std::collections::HashMap::new();
    let mut buf = vec![0u8; SNAPLEN];
    // SAFETY: epoll_event is plain data
    let mut events: Vec<libc::epoll_event> = vec![unsafe { std::mem::zeroed() }; 64];
    loop {
        // SAFETY: events has room for its length; -1: wait until something is ready
        let n = unsafe { libc::epoll_wait(ep.0, events.as_mut_ptr(), events.len() as i32, -1) };
        if n < 0 {
            continue; // EINTR
        }
        let mut woken = false;
        for ev in &events[..n as usize] {
            let key = ev.u64;
            if key == 0 {
                woken = true;
            } else if let Some(slot) = slots.get_mut(&key) {
                slot.read(&mut buf);
            }
        }
        if !woken {
            continue;
        }
        let mut count = [0u8; 8];
        // SAFETY: an 8-byte read from the eventfd (non-blocking: it may be empty)
        let _ = unsafe { libc::read(wake, count.as_mut_ptr().cast(), count.len()) };
        while let Ok(c) = rx.try_recv() {
            match c {
                Command::Add(id, slot) => match watch(&ep, slot.fd.0, id) {
                    Ok(()) => {
                        slots.insert(id, slot);
                    }
                    Err(e) => {
                        if let Ok(mut s) = slot.stats.lock() {
                            s.write_error = Some(format!("capture thread: {e}"));
                        }
                    }
                },
                Command::Stop(id, done) => {
                    if let Some(mut slot) = slots.remove(&id) {
                        // what arrived before the stop (bounded: a link still flooding)
                        for _ in 0..64 {
                            slot.read(&mut buf);
                        }
                        slot.finish();
                        // closing the socket takes it out of the epoll set
                    }
                    let _ = done.send(());
                }
            }
        }
        // flushes asked for (a reader of the file while the capture runs)
        for slot in slots.values_mut() {
            slot.flush_if_asked();
        }
    }
}

impl Slot {
    /// The frames the socket holds now, at most `BURST` at a time: a link that floods
    /// does not keep the thread from the others (epoll reports it again).
    fn read(&mut self, buf: &mut [u8]) {
        const BURST: usize = 512;
        for _ in 0..BURST {
            // SAFETY: sockaddr_ll is plain data
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut flen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: buf and from live for the call, their sizes are given
            let n = unsafe {
                libc::recvfrom(
                    self.fd.0,
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    libc::MSG_TRUNC | libc::MSG_DONTWAIT,
                    &mut from as *mut libc::sockaddr_ll as *mut libc::sockaddr,
                    &mut flen,
                )
            };
            if n < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return; // nothing more now
            }
            self.frame(&buf[..(n as usize).min(buf.len())], n as usize, &from);
        }
    }

    fn frame(&mut self, frame: &[u8], orig: usize, from: &libc::sockaddr_ll) {
        self.number += 1;
        let number = self.number;
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        // on the bench's side of the link, frames the device sent arrive
        // (PACKET_HOST/BROADCAST/MULTICAST/OTHERHOST); PACKET_OUTGOING left the bench
        let from_device = from.sll_pkttype != libc::PACKET_OUTGOING;
        if let Ok(mut t) = self.table.lock() {
            t.add(number, frame, from_device);
        }
        let Ok(mut s) = self.stats.lock() else { return };
        s.packets = number;
        if s.write_error.is_none() {
            if self.writer.written + PcapngWriter::<std::fs::File>::block_len(frame.len()) <= self.limit {
                match self.writer.packet(ts, frame, orig as u32) {
                    Ok(()) => {
                        s.saved_packets += 1;
                        s.saved_bytes = self.writer.written;
                    }
                    Err(e) => s.write_error = Some(e.to_string()),
                }
            } else {
                s.unsaved_packets += 1;
            }
        }
        if number.is_multiple_of(1024) {
            self.drops += kernel_drops(&self.fd);
            s.kernel_drops = self.drops;
        }
    }

    fn flush_if_asked(&mut self) {
        let asked = self.flushes.0.load(Ordering::Acquire);
        if let Ok(mut done) = self.flushes.1.lock()
            && asked > done.0
        {
            if let Err(e) = self.writer.flush()
                && let Ok(mut s) = self.stats.lock()
            {
                s.write_error.get_or_insert(e.to_string());
            }
            *done = (asked, self.writer.written);
        }
    }

    fn finish(&mut self) {
        let _ = self.writer.flush();
        if let Ok(mut s) = self.stats.lock() {
            s.kernel_drops = self.drops + kernel_drops(&self.fd);
            s.saved_bytes = self.writer.written;
        }
    }
}

impl Capture {
    /// Starts capturing on `ifname` into `path` (at most `limit` bytes of file).
    /// `device`: the device's address (its flows are the ones judged).
    pub fn start(ifname: &str, path: &Path, limit: u64, device: Option<IpAddr>) -> Result<Capture, CaptureError> {
        let service = service()?;
        let fd = open_socket(ifname)?;
        let file = std::fs::File::create(path).map_err(|e| CaptureError::File(path.into(), e))?;
        let writer = PcapngWriter::new(std::io::BufWriter::with_capacity(1 << 20, file), ifname, SNAPLEN as u32)
            .map_err(|e| CaptureError::File(path.into(), e))?;
        let table = Arc::new(Mutex::new(FlowTable::new(device)));
        let stats = Arc::new(Mutex::new(CaptureStats {
            interface: ifname.into(),
            limit_bytes: limit,
            ..Default::default()
        }));
        let flushes = Arc::new((AtomicU64::new(0), Mutex::new((0u64, 0u64))));
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let slot = Slot {
            fd,
            writer,
            limit,
            table: table.clone(),
            stats: stats.clone(),
            flushes: flushes.clone(),
            number: 0,
            drops: 0,
        };
        if !service.send(Command::Add(id, Box::new(slot))) {
            return Err(CaptureError::Socket(std::io::Error::other(
                "the capture thread has ended",
            )));
        }
        Ok(Capture {
            path: path.into(),
            table,
            stats,
            started: std::time::Instant::now(),
            id: Some(id),
            flushes,
        })
    }

    /// A copy of the flow table as it is now.
    pub fn snapshot(&self) -> (FlowTable, CaptureStats) {
        let t = self
            .table
            .lock()
            .map(|t| t.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        let s = self
            .stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        (t, s)
    }

    /// Writes out what the capture holds so far, so the file can be read while it runs:
    /// the file's length then (its first bytes up to it are whole blocks), or None if the
    /// capture thread did not get to it within `within`.
    pub fn flush(&self, within: std::time::Duration) -> Option<u64> {
        let want = self.flushes.0.fetch_add(1, Ordering::AcqRel) + 1;
        if let Ok(s) = service() {
            s.send_wake();
        }
        let until = std::time::Instant::now() + within;
        while std::time::Instant::now() < until {
            // (the guard is dropped before the sleep: the capture thread takes this lock)
            let done = self.flushes.1.lock().map(|d| *d).unwrap_or((0, 0));
            if done.0 >= want {
                return Some(done.1);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        None
    }

    /// Stops reading and flushes the file.
    pub fn stop(&mut self) -> CaptureStats {
        if let (Some(id), Ok(service)) = (self.id.take(), service()) {
            let (tx, rx) = mpsc::channel();
            if service.send(Command::Stop(id, tx)) {
                // what is left in the socket is read and the file flushed before the answer
                let _ = rx.recv_timeout(std::time::Duration::from_secs(10));
            }
        }
        self.snapshot().1
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Several captures share the one capture thread: each sees the frames of its link and
    /// writes its own file, a flush while running gives whole blocks, and a stop is prompt
    /// (the thread is woken, not polled).
    #[test]
    fn captures_share_one_thread_and_each_sees_its_frames() {
        if !super::super::netns::is_root() {
            return; // AF_PACKET needs root: the gateway tests cover it on the CI machine
        }
        let dir = tempfile::tempdir().unwrap();
        let mut caps: Vec<Capture> = (0..3)
            .map(|i| Capture::start("lo", &dir.path().join(format!("c{i}.pcapng")), 256 << 20, None).unwrap())
            .collect();
        let threads = || {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .flatten()
                .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "capture"))
                .count()
        };
        assert_eq!(threads(), 1, "one capture thread for three captures");
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = sock.local_addr().unwrap();
        for _ in 0..20 {
            sock.send_to(b"certbench capture test", to).unwrap();
        }
        let len = caps[0]
            .flush(std::time::Duration::from_secs(5))
            .expect("flushed while running");
        assert!(len > 0);
        for c in &mut caps {
            let t0 = std::time::Instant::now();
            let stats = c.stop();
            assert!(
                t0.elapsed() < std::time::Duration::from_millis(500),
                "{:?}",
                t0.elapsed()
            );
            // lo carries each datagram once out and once in: at least the 20 sent
            assert!(stats.packets >= 20, "{stats:?}");
            assert_eq!(stats.saved_packets, stats.packets, "{stats:?}");
            let file = std::fs::metadata(&c.path).unwrap().len();
            assert_eq!(file, stats.saved_bytes, "{stats:?}");
        }
        // a stopped capture's socket is closed: the thread stays, its sockets go
        assert_eq!(threads(), 1);
    }
}
