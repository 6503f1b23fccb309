//! Board locks that die with their holder: an exclusive flock on a file per board. The
//! kernel releases it when the holder exits, however it exits (kill -9 included), so a
//! cancelled CI job never leaves a board reserved.

use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct BoardLock {
    /// The labgrid place held with it, if the board is one (released first: fields drop in
    /// order).
    pub labgrid: Option<super::labgrid::Reservation>,
    _file: std::fs::File,
    pub path: PathBuf,
}

/// Where lock files live unless the inventory says otherwise.
pub fn default_dir() -> PathBuf {
    std::env::temp_dir().join("certbench-locks")
}

/// A file name for a board or port: path separators and odd characters become `_`.
pub fn lock_name(board: &str) -> String {
    board
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn try_lock(f: &std::fs::File) -> bool {
    // SAFETY: flock on an open descriptor we own.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Why a board's lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("lock folder {}: {source}", path.display())]
    Folder { path: PathBuf, source: std::io::Error },
    #[error("lock {}: {source}", path.display())]
    File { path: PathBuf, source: std::io::Error },
    #[error("gave up waiting for board {board}")]
    GaveUp { board: String },
    #[error("board {board} is busy: held by {holder} (lock {}); waited {waited:?}", path.display())]
    Busy {
        board: String,
        holder: String,
        path: PathBuf,
        waited: Duration,
    },
}

/// Takes the board's lock, waiting up to `wait`. On failure says who holds it.
pub fn acquire(
    dir: &Path,
    board: &str,
    wait: Duration,
    give_up: &std::sync::atomic::AtomicBool,
) -> Result<BoardLock, LockError> {
    std::fs::create_dir_all(dir).map_err(|source| LockError::Folder {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(format!("{}.lock", lock_name(board)));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| LockError::File {
            path: path.clone(),
            source,
        })?;
    let deadline = Instant::now() + wait;
    loop {
        if try_lock(&file) {
            let holder = format!(
                "pid={} started={} host={}\n",
                std::process::id(),
                time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                std::fs::read_to_string("/etc/hostname").unwrap_or_default().trim()
            );
            let _ = file.set_len(0);
            let _ = file.rewind();
            let _ = file.write_all(holder.as_bytes());
            let _ = file.flush();
            return Ok(BoardLock {
                labgrid: None,
                _file: file,
                path,
            });
        }
        if give_up.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(LockError::GaveUp { board: board.into() });
        }
        if Instant::now() >= deadline {
            let mut holder = String::new();
            let _ = file.rewind();
            let _ = file.read_to_string(&mut holder);
            return Err(LockError::Busy {
                board: board.into(),
                holder: if holder.trim().is_empty() {
                    "another process".to_string()
                } else {
                    holder.trim().to_string()
                },
                path,
                waited: wait,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_naming_the_first_and_gets_it_after_release() {
        let dir = tempfile::tempdir().expect("tempdir");
        let no = std::sync::atomic::AtomicBool::new(false);
        let first = acquire(dir.path(), "sb-1", Duration::ZERO, &no).expect("free board");
        let err = acquire(dir.path(), "sb-1", Duration::from_millis(100), &no).expect_err("busy");
        assert!(
            err.to_string().contains(&format!("pid={}", std::process::id())),
            "{err}"
        );
        drop(first);
        acquire(dir.path(), "sb-1", Duration::ZERO, &no).expect("released");
    }

    #[test]
    fn a_wait_for_a_busy_board_can_be_given_up_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let no = std::sync::atomic::AtomicBool::new(false);
        let _first = acquire(dir.path(), "sb-1", Duration::ZERO, &no).expect("free board");
        let yes = std::sync::atomic::AtomicBool::new(true);
        let t0 = Instant::now();
        let err = acquire(dir.path(), "sb-1", Duration::from_secs(600), &yes).expect_err("gave up");
        assert!(err.to_string().contains("gave up"), "{err}");
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the 10-minute wait was not cut short"
        );
    }
}
