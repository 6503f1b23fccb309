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

use super::{Console, Feed, Transport};

#[derive(Debug)]
pub struct SerialTransport {
    path: PathBuf,
    writer: Arc<Mutex<Option<TTYPort>>>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
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

/// Opens `path` and starts reading. If the path does not exist yet (the board is off
/// and its UART is unpowered), reading starts as soon as it appears.
pub fn connect(path: &Path, baud: u32, feed: Arc<Feed>) -> Console {
    let writer: Arc<Mutex<Option<TTYPort>>> = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let t = SerialTransport {
        path: path.to_path_buf(),
        writer: writer.clone(),
        stop: stop.clone(),
        thread: Mutex::new(None),
    };
    let thread_feed = feed.clone();
    let path = path.to_path_buf();
    let handle = std::thread::Builder::new()
        .name("console-reader".into())
        .spawn(move || reader(path, baud, thread_feed, writer, stop))
        .ok();
    *t.thread.lock().unwrap_or_else(|p| p.into_inner()) = handle;
    Console::new(feed, Arc::new(t))
}

fn reader(path: PathBuf, baud: u32, feed: Arc<Feed>, writer: Arc<Mutex<Option<TTYPort>>>, stop: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 64 << 10];
    let mut last_error: Option<String> = None;
    while !stop.load(Ordering::Relaxed) {
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

impl Transport for SerialTransport {
    fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut g = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        match g.as_mut() {
            Some(p) => {
                p.write_all(bytes)?;
                p.flush()
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                format!("console {} is not connected", self.path.display()),
            )),
        }
    }

    fn close(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = h.join();
        }
    }
}
