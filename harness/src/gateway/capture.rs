//! Capture of the device's link: every frame on one interface (AF_PACKET, root), written
//! to a pcapng file up to a size limit and fed to the flow table. Past the limit the file
//! stops growing (the report says how many packets it lacks) while the flow table still
//! sees every packet: memory and disk stay bounded, verdicts do not depend on the limit.

use super::flows::FlowTable;
use super::pcapng::PcapngWriter;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

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
    stop: Arc<AtomicBool>,
    /// Flushes asked for, and the last one done with the file's length then (the file is
    /// read while the capture runs: up to that length it holds whole blocks).
    flushes: Arc<(AtomicU64, Mutex<(u64, u64)>)>,
    thread: Option<JoinHandle<()>>,
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
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    let buf: i32 = 8 << 20;
    // SAFETY: option values live for the calls; failures only mean defaults stay
    unsafe {
        libc::setsockopt(
            fd.0,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as u32,
        );
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

impl Capture {
    /// Starts capturing on `ifname` into `path` (at most `limit` bytes of file).
    /// `device`: the device's address (its flows are the ones judged).
    pub fn start(ifname: &str, path: &Path, limit: u64, device: Option<IpAddr>) -> Result<Capture, CaptureError> {
        let fd = open_socket(ifname)?;
        let file = std::fs::File::create(path).map_err(|e| CaptureError::File(path.into(), e))?;
        let mut writer = PcapngWriter::new(std::io::BufWriter::with_capacity(1 << 20, file), ifname, SNAPLEN as u32)
            .map_err(|e| CaptureError::File(path.into(), e))?;
        let table = Arc::new(Mutex::new(FlowTable::new(device)));
        let stats = Arc::new(Mutex::new(CaptureStats {
            interface: ifname.into(),
            limit_bytes: limit,
            ..Default::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let flushes = Arc::new((AtomicU64::new(0), Mutex::new((0u64, 0u64))));
        let (t, s, st, fl) = (table.clone(), stats.clone(), stop.clone(), flushes.clone());
        let thread = std::thread::Builder::new()
            .name(format!("capture-{ifname}"))
            .spawn(move || {
                let mut buf = vec![0u8; SNAPLEN];
                let mut number = 0u64;
                let mut drops = 0u64;
                while !st.load(Ordering::Relaxed) {
                    let asked = fl.0.load(Ordering::Acquire);
                    if let Ok(mut done) = fl.1.lock()
                        && asked > done.0
                    {
                        if let Err(e) = writer.flush()
                            && let Ok(mut s) = s.lock()
                        {
                            s.write_error.get_or_insert(e.to_string());
                        }
                        *done = (asked, writer.written);
                    }
                    // SAFETY: sockaddr_ll is plain data
                    let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                    let mut flen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
                    // SAFETY: buf and from live for the call, their sizes are given
                    let n = unsafe {
                        libc::recvfrom(
                            fd.0,
                            buf.as_mut_ptr() as *mut libc::c_void,
                            buf.len(),
                            libc::MSG_TRUNC,
                            &mut from as *mut libc::sockaddr_ll as *mut libc::sockaddr,
                            &mut flen,
                        )
                    };
                    if n < 0 {
                        continue; // timeout (checks the stop flag) or EINTR
                    }
                    let orig = n as usize;
                    let got = orig.min(buf.len());
                    number += 1;
                    let ts = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_micros() as u64)
                        .unwrap_or(0);
                    // on the bench's side of the link, frames the device sent arrive
                    // (PACKET_HOST/BROADCAST/MULTICAST/OTHERHOST); PACKET_OUTGOING left the bench
                    let from_device = from.sll_pkttype != libc::PACKET_OUTGOING;
                    let frame = &buf[..got];
                    if let Ok(mut t) = t.lock() {
                        t.add(number, frame, from_device);
                    }
                    let Ok(mut s) = s.lock() else { continue };
                    s.packets = number;
                    if s.write_error.is_none() {
                        if writer.written + PcapngWriter::<std::fs::File>::block_len(got) <= limit {
                            match writer.packet(ts, frame, orig as u32) {
                                Ok(()) => {
                                    s.saved_packets += 1;
                                    s.saved_bytes = writer.written;
                                }
                                Err(e) => s.write_error = Some(e.to_string()),
                            }
                        } else {
                            s.unsaved_packets += 1;
                        }
                    }
                    if number.is_multiple_of(1024) {
                        drops += kernel_drops(&fd);
                        s.kernel_drops = drops;
                    }
                }
                let _ = writer.flush();
                if let Ok(mut s) = s.lock() {
                    s.kernel_drops = drops + kernel_drops(&fd);
                    s.saved_bytes = writer.written;
                }
            })
            .map_err(|e| CaptureError::File(path.into(), e))?;
        Ok(Capture {
            path: path.into(),
            table,
            stats,
            started: std::time::Instant::now(),
            stop,
            flushes,
            thread: Some(thread),
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
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.snapshot().1
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop();
    }
}
