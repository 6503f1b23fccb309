//! An in-process transport for tests: what the harness writes is handed, a line at a time, to
//! a scripted device whose answers are fed back as if the board had printed them. No PTY, no
//! thread: the engine's dialogs can be unit-tested against a device written in a few lines.

use std::sync::{Arc, Mutex};

use super::{Console, ConsoleTransport, Feed};

/// A scripted device: given one line the harness sent (without its line ending), returns
/// what the device prints in answer.
pub type Script = Box<dyn FnMut(&str) -> Vec<u8> + Send>;

struct Inner {
    script: Script,
    /// Bytes written since the last line ending.
    partial: Vec<u8>,
}

/// The fake transport: feeds the script's answers into the console's feed.
pub struct FakeTransport {
    feed: Arc<Feed>,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for FakeTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeTransport")
    }
}

impl ConsoleTransport for FakeTransport {
    fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for &b in bytes {
            if b == b'\r' || b == b'\n' {
                let line = String::from_utf8_lossy(&std::mem::take(&mut g.partial)).into_owned();
                let answer = (g.script)(&line);
                if !answer.is_empty() {
                    self.feed.rx(&answer);
                }
            } else {
                g.partial.push(b);
            }
        }
        Ok(())
    }

    fn close(&self) {
        self.feed.event("fake console closed".into(), Some(false));
    }
}

/// A connected console whose device is `script`; the feed lets a test print as the device
/// would on its own (a boot banner, a prompt after a power cycle).
pub fn console(script: Script) -> (Console, Arc<Feed>) {
    let feed = Feed::new(std::time::Instant::now());
    feed.event("fake console opened".into(), Some(true));
    let t = FakeTransport {
        feed: feed.clone(),
        inner: Mutex::new(Inner {
            script,
            partial: Vec::new(),
        }),
    };
    (Console::new(feed.clone(), Arc::new(t)), feed)
}
