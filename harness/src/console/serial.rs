//! Serial console driver on the `serialport` crate: any tty path (/dev/ttyUSB0,
//! /dev/serial/by-id/..., a PTY link). A reader thread keeps every byte from the moment
//! the port is opened, and reopens the port when it vanishes (USB-UARTs powered by the
//! board, PTYs of emulators) so output across power cycles is not lost.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serialport::TTYPort;

use super::{Console, ConsoleTransport, Feed};

#[derive(Debug)]
pub struct SerialTransport {
    path: PathBuf,
    writer: Arc<Mutex<Option<TTYPort>>>,
    stop: Arc<AtomicBool>,
    /// Written on close: wakes the reader from its wait for console bytes at once.
    wake: Option<Arc<std::os::fd::OwnedFd>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// An eventfd the reader waits on beside the port (so an idle console costs no wake-ups);
/// None if none can be made (then the reader looks at its stop flag every 200 ms).
pub(super) fn wake_fd() -> Option<Arc<std::os::fd::OwnedFd>> {
    use std::os::fd::FromRawFd;
    // SAFETY: eventfd returns a new descriptor or -1
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    // SAFETY: a valid descriptor this function owns
    (fd >= 0).then(|| Arc::new(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }))
}

/// Waits until the port has something (bytes, hang-up, error) or `wake` is signalled:
/// Ok(true) to read, Ok(false) to stop.
pub(super) fn wait_readable(
    port: &impl std::os::fd::AsRawFd,
    wake: Option<&std::os::fd::OwnedFd>,
) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    let mut fds = [
        libc::pollfd {
            fd: port.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: wake.map_or(-1, |w| w.as_raw_fd()),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // no wake descriptor: a bounded wait, so the stop flag is seen
    let timeout = if wake.is_some() { -1 } else { 200 };
    loop {
        // SAFETY: two pollfd structs (a negative fd is ignored by poll)
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
        if r >= 0 {
            return Ok(fds[1].revents == 0);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn open(path: &Path, baud: u32) -> Result<TTYPort, serialport::Error> {
    // Not exclusive: that would lock out a second reader we may want, and the exclusive flock
    // taken while opening can refuse a PTY whose number was just recycled. Who may use a
    // board is decided by the lab's board locks (lab::lock), not by the tty.
    serialport::new(path.to_string_lossy(), baud)
        .timeout(Duration::from_millis(20))
        .exclusive(false)
        .open_native()
}

/// Who a console path is: the link itself (when the path is a symlink, e.g. a PTY link
/// or /dev/serial/by-id/...) and the device node it leads to (with its creation time, so a
/// tty freed and handed to another program under the same number differs).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PortIdentity {
    link: Option<(u64, u64, i64, i64)>,
    node: (u64, u64, u64, i64, i64),
}

fn identity(path: &Path) -> Option<PortIdentity> {
    use std::os::unix::fs::MetadataExt;
    let l = std::fs::symlink_metadata(path).ok()?;
    let link = l
        .file_type()
        .is_symlink()
        .then(|| (l.dev(), l.ino(), l.ctime(), l.ctime_nsec()));
    let n = std::fs::metadata(path).ok()?;
    Some(PortIdentity {
        link,
        node: (n.dev(), n.ino(), n.rdev(), n.ctime(), n.ctime_nsec()),
    })
}

/// Whether reopening `now` would read someone else's tty: the same, untouched link now
/// leads to a device node created since (the board's tty was freed without its link being
/// removed, and another program got the number). A recreated link is a new device
/// announcing itself (a board's PTY after power-on, a re-enumerated by-id link).
fn foreign(before: &PortIdentity, now: &PortIdentity) -> bool {
    before.link.is_some() && before.link == now.link && before.node != now.node
}

/// Opens `path` and starts reading. If the path does not exist yet (the board is off
/// and its UART is unpowered), reading starts as soon as it appears.
pub fn connect(path: &Path, baud: u32, feed: Arc<Feed>) -> Console {
    let writer: Arc<Mutex<Option<TTYPort>>> = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let wake = wake_fd();
    let t = SerialTransport {
        path: path.to_path_buf(),
        writer: writer.clone(),
        stop: stop.clone(),
        wake: wake.clone(),
        thread: Mutex::new(None),
    };
    let thread_feed = feed.clone();
    let path = path.to_path_buf();
    let handle = std::thread::Builder::new()
        .name("console-reader".into())
        .spawn(move || reader(path, baud, thread_feed, writer, stop, wake.as_deref()))
        .ok();
    *t.thread.lock().unwrap_or_else(|p| p.into_inner()) = handle;
    Console::new(feed, Arc::new(t))
}

fn reader(
    path: PathBuf,
    baud: u32,
    feed: Arc<Feed>,
    writer: Arc<Mutex<Option<TTYPort>>>,
    stop: Arc<AtomicBool>,
    wake: Option<&std::os::fd::OwnedFd>,
) {
    let mut buf = vec![0u8; 64 << 10];
    let mut last_error: Option<String> = None;
    let mut known: Option<PortIdentity> = None;
    while !stop.load(Ordering::Relaxed) {
        let id = identity(&path);
        if let (Some(before), Some(now)) = (&known, &id)
            && foreign(before, now)
        {
            let msg = format!(
                "console {}: the link was not renewed but now leads to another device (a freed tty given to another program?); not reopened, the board's console is lost",
                path.display()
            );
            if last_error.as_deref() != Some(&msg) {
                feed.event(msg.clone(), Some(false));
                last_error = Some(msg);
            }
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let mut port = match open(&path, baud) {
            Ok(p) => p,
            Err(e) => {
                let msg = e.to_string();
                if last_error.as_deref() != Some(&msg) {
                    feed.event(format!("console {} not available: {msg}", path.display()), Some(false));
                    last_error = Some(msg);
                }
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        last_error = None;
        known = id;
        match port.try_clone_native() {
            Ok(w) => *writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(w),
            Err(e) => feed.event(
                format!("console {}: cannot clone for writing: {e}", path.display()),
                None,
            ),
        }
        feed.event(format!("console {} opened at {baud} baud", path.display()), Some(true));
        let why = loop {
            if stop.load(Ordering::Relaxed) {
                break None;
            }
            // event-driven: sleep until the board sends something or certbench closes
            match wait_readable(&port, wake) {
                Ok(true) => {}
                Ok(false) => break None,
                Err(e) => break Some(e.to_string()),
            }
            match port.read(&mut buf) {
                Ok(0) => break Some("end of file".to_string()),
                Ok(n) => feed.rx(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => break Some(e.to_string()),
            }
        };
        *writer.lock().unwrap_or_else(|p| p.into_inner()) = None;
        if let Some(why) = why {
            feed.event(format!("console {} lost: {why}", path.display()), Some(false));
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl ConsoleTransport for SerialTransport {
    fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut g = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        match g.as_mut() {
            Some(p) => {
                p.write_all(bytes)?;
                // the bytes are with the tty; waiting until they are sent (tcdrain) fails
                // if the line hangs up meanwhile — the reader reports that loss, and the
                // dialog is judged on it (a lost console), not on a failed write
                let _ = p.flush();
                Ok(())
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                format!("console {} is not connected", self.path.display()),
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
        if let Some(h) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;
    use std::time::Instant;

    /// A raw PTY pair: (master, slave, slave path).
    fn pty() -> (std::fs::File, std::fs::File, String) {
        let (mut m, mut s) = (-1, -1);
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: openpty fills two fds and a NUL-terminated name.
        let rc = unsafe { libc::openpty(&mut m, &mut s, name.as_mut_ptr(), std::ptr::null(), std::ptr::null()) };
        assert_eq!(rc, 0, "openpty");
        // SAFETY: fresh fds from openpty; the name is NUL-terminated.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            libc::tcgetattr(s, &mut t);
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(s, libc::TCSANOW, &t);
            (
                std::fs::File::from_raw_fd(m),
                std::fs::File::from_raw_fd(s),
                std::ffi::CStr::from_ptr(name.as_ptr()).to_string_lossy().into_owned(),
            )
        }
    }

    fn text(c: &Console) -> String {
        c.with_transcript(|t| t.render_text(0, &crate::redact::Redactor::default()))
    }

    fn wait_for(c: &Console, what: &str) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if text(c).contains(what) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn a_stale_link_to_a_recycled_pty_is_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("board.tty");
        let (mut master, slave, name) = pty();
        std::os::unix::fs::symlink(&name, &link).expect("link");
        let c = connect(&link, 115_200, Feed::new(Instant::now()));
        assert!(wait_for(&c, "opened"), "{}", text(&c));
        master.write_all(b"board says hello\r\n").expect("write");
        assert!(wait_for(&c, "board says hello"), "{}", text(&c));
        // the board dies without removing its link: its tty is freed...
        drop(slave);
        drop(master);
        assert!(wait_for(&c, "lost"), "{}", text(&c));
        // ...and another program gets a tty, quite possibly under the same number
        let (mut other, _other_slave, other_name) = pty();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(800) {
            let _ = other.write_all(b"FOREIGN PROGRAM OUTPUT\r\n");
            std::thread::sleep(Duration::from_millis(50));
        }
        let seen = text(&c);
        eprintln!("the board's tty was {name}; the other program's is {other_name}");
        assert!(
            !seen.contains("FOREIGN"),
            "another program's output entered the evidence:\n{seen}"
        );
        if other_name == name {
            assert!(seen.contains("not reopened"), "the loss is reported:\n{seen}");
        }
        // a renewed link is a new device announcing itself: followed
        std::fs::remove_file(&link).expect("unlink");
        std::os::unix::fs::symlink(&other_name, &link).expect("relink");
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(3) && !text(&c).contains("renewed device") {
            let _ = other.write_all(b"renewed device\r\n");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(text(&c).contains("renewed device"), "{}", text(&c));
        c.close();
    }
}
