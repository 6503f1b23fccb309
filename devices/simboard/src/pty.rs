//! The board's serial line: a PTY pair whose slave end is linked at a stable path, the way
//! a USB-UART shows up as /dev/ttyUSB0. The board reads and writes the master end.

use std::ffi::CStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

#[derive(Debug)]
pub struct SerialLine {
    master: File,
    /// Kept open so that writes before the harness opens the line are buffered by the
    /// kernel, not lost, and so the master never sees EIO when the harness reconnects.
    _slave: OwnedFd,
}

impl SerialLine {
    pub fn create(link: &Path) -> Result<Self, String> {
        let mut master: libc::c_int = -1;
        let mut slave: libc::c_int = -1;
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: openpty writes two fds and a NUL-terminated name into our buffers.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                name.as_mut_ptr(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(format!("openpty: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: both fds were just returned by openpty and are owned by nobody else.
        let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        // SAFETY: openpty NUL-terminates the name.
        let slave_name = unsafe { CStr::from_ptr(name.as_ptr()) }.to_string_lossy().into_owned();
        set_raw(&slave)?;
        // a reboot re-executes the board: its old line must not leak into the new life
        for fd in [master.as_raw_fd(), slave.as_raw_fd()] {
            // SAFETY: fcntl on descriptors we own.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        let tmp = link.with_extension("simboard-tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&slave_name, &tmp).map_err(|e| format!("symlink {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, link).map_err(|e| format!("rename to {}: {e}", link.display()))?;
        Ok(Self { master, _slave: slave })
    }

    /// A second handle for writing from another thread (the update agent).
    pub fn writer(&self) -> Option<File> {
        self.master.try_clone().ok()
    }

    pub fn write_all(&mut self, bytes: &[u8]) {
        // A UART drops what nobody reads; so do we on error.
        let _ = self.master.write_all(bytes);
        let _ = self.master.flush();
    }

    /// Waits up to `ms` for input: Some(true) when a byte is ready, Some(false) on timeout,
    /// None when the line is gone.
    pub fn poll_input(&self, ms: i32) -> Option<bool> {
        let mut p = libc::pollfd {
            fd: self.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for a descriptor we own.
        let rc = unsafe { libc::poll(&mut p, 1, ms) };
        match rc {
            0 => Some(false),
            n if n > 0 && p.revents & libc::POLLIN != 0 => Some(true),
            n if n > 0 => None,
            _ => Some(false),
        }
    }

    /// Discards what was typed so far, as a getty flushes input before its first prompt.
    pub fn flush_input(&mut self) {
        while self.poll_input(0) == Some(true) {
            if self.read_byte().is_none() {
                return;
            }
        }
    }

    pub fn read_byte(&mut self) -> Option<u8> {
        let mut b = [0u8; 1];
        loop {
            match self.master.read(&mut b) {
                Ok(1) => return Some(b[0]),
                Ok(_) => return None,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return None,
            }
        }
    }
}

fn set_raw(fd: &OwnedFd) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    // SAFETY: termios is plain data; tcgetattr fills it for a valid tty fd.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd.as_raw_fd(), &mut t) != 0 {
            return Err(format!("tcgetattr: {}", std::io::Error::last_os_error()));
        }
        libc::cfmakeraw(&mut t);
        if libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, &t) != 0 {
            return Err(format!("tcsetattr: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}
