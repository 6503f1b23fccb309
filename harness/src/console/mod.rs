//! The console capability: send to the device and wait for what it prints.
//!
//! A transport driver (serial port, or a fake in tests) feeds received bytes into a
//! shared [`Console`]; the scenario engine only sees this module's types.

pub mod ansi;
pub mod fake;
pub mod matcher;
pub mod network;
pub mod serial;
pub mod transcript;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use regex::bytes::Regex;
use tokio::sync::Notify;

use matcher::{Cursor, Found, MatchBuffer};
use transcript::{Entry, Transcript};

/// Writes to the device. Implemented by drivers.
pub trait ConsoleTransport: Send + Sync + std::fmt::Debug {
    fn write(&self, bytes: &[u8]) -> std::io::Result<()>;
    /// Stops reading and releases the port.
    fn close(&self);
}

#[derive(Debug)]
struct Inner {
    transcript: Transcript,
    matcher: MatchBuffer,
    connected: bool,
    last_event: String,
    /// When the device last printed anything.
    last_rx: Option<Instant>,
    /// When the link last changed (lost, opened, not available).
    last_link_change: Option<Instant>,
    /// How many times the console came back after being lost.
    reopened: u64,
    was_opened: bool,
    /// One session (SSH, telnet): once ended it never comes back, unlike a serial line
    /// whose board reboots.
    one_session: bool,
    /// The last received bytes as they came (at most [`RAW_TAIL`] .. 2×), and how many were
    /// received in all: a negative window also judges the raw stream.
    raw_tail: Vec<u8>,
    rx_total: u64,
}

/// Raw bytes kept for negative windows (a window judges at most this much of its end raw).
const RAW_TAIL: usize = 64 << 10;

/// The shared end a driver feeds.
#[derive(Debug)]
pub struct Feed {
    inner: Mutex<Inner>,
    notify: Notify,
    epoch: Instant,
}

impl Feed {
    pub fn new(epoch: Instant) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner {
                transcript: Transcript::default(),
                matcher: MatchBuffer::default(),
                connected: false,
                last_event: String::new(),
                last_rx: None,
                last_link_change: None,
                reopened: 0,
                was_opened: false,
                one_session: false,
                raw_tail: Vec::new(),
                rx_total: 0,
            }),
            notify: Notify::new(),
            epoch,
        })
    }

    /// A feed for one session (SSH, telnet): a wait that begins after the session ended
    /// ends at once instead of at its deadline.
    pub fn one_session(epoch: Instant) -> Arc<Self> {
        let f = Self::new(epoch);
        f.lock().one_session = true;
        f
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves data that is still consistent enough to report.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn rx(&self, bytes: &[u8]) {
        let at = self.epoch.elapsed();
        let mut g = self.lock();
        g.transcript.push(at, Entry::Rx(bytes.to_vec()));
        g.matcher.push(bytes);
        g.raw_tail.extend_from_slice(bytes);
        if g.raw_tail.len() > 2 * RAW_TAIL {
            let cut = g.raw_tail.len() - RAW_TAIL;
            g.raw_tail.drain(..cut);
        }
        g.rx_total += bytes.len() as u64;
        g.last_rx = Some(Instant::now());
        drop(g);
        self.notify.notify_waiters();
    }

    pub fn event(&self, text: String, connected: Option<bool>) {
        let at = self.epoch.elapsed();
        let mut g = self.lock();
        if let Some(c) = connected {
            g.last_link_change = Some(Instant::now());
            if c && !g.connected && g.was_opened {
                g.reopened += 1;
            }
            if c {
                g.was_opened = true;
            }
            g.connected = c;
        }
        g.last_event = text.clone();
        g.transcript.push(at, Entry::Event(text));
        drop(g);
        self.notify.notify_waiters();
    }
}

/// What a wait ended with.
#[derive(Debug)]
pub enum Wait {
    Found(Found),
    /// The deadline passed.
    Timeout,
}

/// A device console: a transport plus the transcript and matcher it feeds.
#[derive(Debug, Clone)]
pub struct Console {
    feed: Arc<Feed>,
    transport: Arc<dyn ConsoleTransport>,
    /// How long a vanished console may stay away during a wait before the board counts
    /// as dead.
    lost_grace: Duration,
}

impl Console {
    pub fn new(feed: Arc<Feed>, transport: Arc<dyn ConsoleTransport>) -> Self {
        Self {
            feed,
            transport,
            lost_grace: Duration::from_millis(500),
        }
    }

    pub fn with_lost_grace(mut self, grace: Duration) -> Self {
        self.lost_grace = grace;
        self
    }

    pub fn feed(&self) -> &Arc<Feed> {
        &self.feed
    }

    /// Sends bytes; `shown` is what the transcript records (secrets already replaced).
    pub fn send(&self, bytes: &[u8], shown: String) -> std::io::Result<()> {
        let at = self.feed.epoch.elapsed();
        self.feed.lock().transcript.push(at, Entry::Tx(shown));
        self.transport.write(bytes)
    }

    /// How many times the console has come back after being lost (a reset board, a
    /// re-enumerated USB-UART): a dialog that spans a change of this cannot be judged.
    pub fn reopened(&self) -> u64 {
        self.feed.lock().reopened
    }

    pub fn marker(&self, text: String) {
        let at = self.feed.epoch.elapsed();
        self.feed.lock().transcript.push(at, Entry::Marker(text));
    }

    pub fn connected(&self) -> bool {
        self.feed.lock().connected
    }

    /// Drops unmatched output, so a new test starts from a clean boundary.
    pub fn drain(&self) {
        self.feed.lock().matcher.clear();
    }

    /// Whether nothing has arrived from the device since `t`, nothing waits unmatched and the
    /// console is connected and has not been lost or reopened since (a board switched off or
    /// restarted prints nothing on a dead line, yet is no longer at its shell).
    pub fn quiet_since(&self, t: Instant) -> bool {
        let g = self.feed.lock();
        g.connected
            && g.last_rx.is_none_or(|r| r <= t)
            && g.last_link_change.is_none_or(|r| r <= t)
            && g.matcher.pending().is_empty()
    }

    pub fn with_transcript<R>(&self, f: impl FnOnce(&Transcript) -> R) -> R {
        f(&self.feed.lock().transcript)
    }

    /// Waits until one of `patterns` matches or `deadline` passes. If `wake` is given,
    /// `wake.1` is sent each time `wake.0` passes with nothing matched. If the console was
    /// connected during the wait and then vanished for longer than the grace time, the
    /// wait ends at once with Err (a dead board is reported now, not at the deadline).
    pub async fn expect(
        &self,
        patterns: &[&Regex],
        deadline: Instant,
        wake: Option<(Duration, &[u8])>,
    ) -> Result<Wait, String> {
        let mut cursor = Cursor::default();
        let mut next_wake = wake.map(|(d, _)| Instant::now() + d);
        // a session that already ended counts as lost now, not as a board yet to come up
        let mut was_connected = {
            let g = self.feed.lock();
            g.one_session && g.was_opened
        };
        let mut lost_since: Option<Instant> = None;
        loop {
            let notified = self.feed.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (found, connected, last_event) = {
                let mut g = self.feed.lock();
                (g.matcher.find(&mut cursor, patterns), g.connected, g.last_event.clone())
            };
            if let Some(found) = found {
                return Ok(Wait::Found(found));
            }
            let now = Instant::now();
            if connected {
                was_connected = true;
                lost_since = None;
            } else if was_connected {
                let since = *lost_since.get_or_insert(now);
                if now.duration_since(since) >= self.lost_grace {
                    return Err(last_event);
                }
            }
            if now >= deadline {
                return Ok(Wait::Timeout);
            }
            let mut until = deadline;
            if let Some(since) = lost_since {
                until = until.min(since + self.lost_grace);
            }
            if let (Some(w), Some((every, bytes))) = (next_wake, wake) {
                // Only into a quiet console: a key pressed while the board still prints its
                // boot log can stop a bootloader's autoboot or be replayed as extra prompts.
                // A console that never goes quiet still gets its key, ten periods late.
                let quiet_at = self.feed.lock().last_rx.map_or(w, |t| w.max(t + every));
                let due = quiet_at.min(w + every * 10);
                if now >= due {
                    let _ = self.send(bytes, "<Enter> (wake-up: no prompt, console quiet)".into());
                    next_wake = Some(now + every);
                    until = until.min(now + every);
                } else {
                    until = until.min(due);
                }
            }
            let _ = tokio::time::timeout(until.saturating_duration_since(Instant::now()), notified).await;
        }
    }

    /// Watches for `pattern` during `window`; returns the match if it appears (nothing is
    /// consumed: the output may still serve a later expect). The window is judged on the
    /// text a person sees and on the raw stream with control strings opened up
    /// ([`ansi::strip_keeping_strings`]): a device cannot hide a forbidden prompt inside an
    /// OSC or DCS string it never closes.
    pub async fn expect_none(&self, pattern: &Regex, window: Duration) -> Option<String> {
        let deadline = Instant::now() + window;
        let mut cursor = Cursor::default();
        let from = self.feed.lock().rx_total;
        let mut raw_checked = from;
        loop {
            let notified = self.feed.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let g = self.feed.lock();
                if let Some((_, s, e)) = g.matcher.peek(&mut cursor, &[pattern]) {
                    return Some(String::from_utf8_lossy(&g.matcher.pending()[s..e]).into_owned());
                }
                if g.rx_total > raw_checked {
                    raw_checked = g.rx_total;
                    let since = usize::try_from(g.rx_total - from).unwrap_or(usize::MAX);
                    let raw = &g.raw_tail[g.raw_tail.len().saturating_sub(since.min(RAW_TAIL))..];
                    let opened = ansi::strip_keeping_strings(raw);
                    if let Some(m) = pattern.find(&opened) {
                        return Some(format!(
                            "{} (inside a control string the terminal hides)",
                            String::from_utf8_lossy(m.as_bytes())
                        ));
                    }
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            let _ = tokio::time::timeout(deadline - now, notified).await;
        }
    }

    pub fn close(&self) {
        self.transport.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what is written to the device, with when.
    #[derive(Debug, Default)]
    struct Recorder(Mutex<Vec<Instant>>);

    impl ConsoleTransport for Recorder {
        fn write(&self, _bytes: &[u8]) -> std::io::Result<()> {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push(Instant::now());
            Ok(())
        }
        fn close(&self) {}
    }

    #[tokio::test]
    async fn a_prompt_hidden_in_an_unterminated_control_string_still_fails_a_negative_window() {
        let re = Regex::new("login: $").expect("regex");
        for hidden in [
            &b"\x1bPlogin: "[..],
            b"\x1b]0;login: ",
            b"boot ok\r\n\x1b_x\x1b[0m login: ",
        ] {
            let feed = Feed::new(Instant::now());
            feed.event("opened".into(), Some(true));
            let c = Console::new(feed.clone(), Arc::new(Recorder::default()));
            let f = feed.clone();
            let h = hidden.to_vec();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                f.rx(&h);
            });
            let seen = c.expect_none(&re, Duration::from_millis(400)).await;
            assert!(seen.is_some_and(|s| s.contains("login")), "{hidden:?}");
        }
        // a window where the device prints no prompt passes
        let feed = Feed::new(Instant::now());
        feed.event("opened".into(), Some(true));
        let c = Console::new(feed.clone(), Arc::new(Recorder::default()));
        feed.rx(b"\x1b]0;title\x07ready\r\n");
        assert_eq!(
            c.expect_none(&Regex::new("login: $").expect("regex"), Duration::from_millis(100))
                .await,
            None
        );
    }

    #[tokio::test]
    async fn wake_up_keys_wait_for_a_quiet_console() {
        let feed = Feed::new(Instant::now());
        feed.event("opened".into(), Some(true));
        let rec = Arc::new(Recorder::default());
        let c = Console::new(feed.clone(), rec.clone());
        // a chatty boot for 1.2 s, then silence
        let noisy = feed.clone();
        let boot = tokio::spawn(async move {
            for i in 0..24 {
                noisy.rx(format!("[ {i}] probing device ... ok\r\n").as_bytes());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let start = Instant::now();
        let never = Regex::new("never printed").expect("regex");
        let wait = c
            .expect(
                &[&never],
                start + Duration::from_millis(2500),
                Some((Duration::from_millis(300), b"\r")),
            )
            .await;
        boot.await.expect("boot task");
        assert!(matches!(wait, Ok(Wait::Timeout)));
        let writes = rec.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let boot_end = start + Duration::from_millis(1150);
        assert!(
            writes.iter().all(|w| *w >= boot_end),
            "a wake-up key was sent while the board was printing: {:?}",
            writes.iter().map(|w| w.duration_since(start)).collect::<Vec<_>>()
        );
        assert!(!writes.is_empty(), "the quiet console got its wake-up");
    }

    /// A wait that begins after an SSH or telnet session ended ends at once with the
    /// reason; on a serial line the same wait lasts (the board may be rebooting).
    #[tokio::test]
    async fn a_wait_after_a_session_ended_ends_at_once_but_a_serial_line_is_awaited() {
        let never = Regex::new("never printed").expect("regex");
        let session = Feed::one_session(Instant::now());
        session.event("SSH session".into(), Some(true));
        session.event("the SSH session ended".into(), Some(false));
        let c = Console::new(session, Arc::new(Recorder::default())).with_lost_grace(Duration::from_millis(50));
        let start = Instant::now();
        let r = c.expect(&[&never], start + Duration::from_secs(5), None).await;
        assert_eq!(r.err().as_deref(), Some("the SSH session ended"));
        assert!(start.elapsed() < Duration::from_secs(1), "{:?}", start.elapsed());

        let serial = Feed::new(Instant::now());
        serial.event("opened".into(), Some(true));
        serial.event("lost".into(), Some(false));
        let c = Console::new(serial.clone(), Arc::new(Recorder::default())).with_lost_grace(Duration::from_millis(50));
        let back = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            serial.event("opened".into(), Some(true));
            serial.rx(b"login: ");
        });
        let login = Regex::new("login: $").expect("regex");
        let r = c.expect(&[&login], Instant::now() + Duration::from_secs(5), None).await;
        back.await.expect("task");
        assert!(matches!(r, Ok(Wait::Found(_))), "{r:?}");
    }

    #[test]
    fn a_console_that_comes_back_is_counted() {
        let feed = Feed::new(Instant::now());
        let c = Console::new(feed.clone(), Arc::new(Recorder::default()));
        feed.event("opened".into(), Some(true));
        assert_eq!(c.reopened(), 0);
        feed.event("lost".into(), Some(false));
        feed.event("opened".into(), Some(true));
        assert_eq!(c.reopened(), 1);
    }

    /// "At the shell" holds only while the device is silent on a live line: output, a lost
    /// line (a board switched off prints nothing) or a reopened one ends it.
    #[test]
    fn quiet_means_silent_on_a_live_line() {
        let feed = Feed::new(Instant::now());
        let c = Console::new(feed.clone(), Arc::new(Recorder::default()));
        feed.event("opened".into(), Some(true));
        feed.rx(b"$ ");
        let shell = Regex::new(r"\$ $").expect("regex");
        let seen = {
            let mut g = feed.lock();
            assert!(g.matcher.find(&mut Cursor::default(), &[&shell]).is_some());
            Instant::now()
        };
        assert!(c.quiet_since(seen));
        feed.event("lost".into(), Some(false));
        assert!(!c.quiet_since(seen), "switched off: not at the shell");
        feed.event("opened".into(), Some(true));
        assert!(!c.quiet_since(seen), "reopened since: not at the shell");
        let later = Instant::now();
        assert!(c.quiet_since(later));
        feed.rx(b"reboot\r\n");
        assert!(!c.quiet_since(later), "printed since");
    }
}
