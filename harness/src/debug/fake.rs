//! A fake part behind [`DebugPort`] for tests: locked, read-protected, unlocked (with a
//! memory image), absent, or disconnecting after some bytes.

use super::port::{Abilities, DebugError, DebugPort};

#[derive(Debug, Clone)]
pub enum FakeMode {
    /// Refuses the attach, as a locked part does.
    Locked,
    /// Attaches but refuses memory reads.
    ReadProtected,
    /// Memory from address 0.
    Unlocked(Vec<u8>),
    /// No probe answers.
    Absent,
}

#[derive(Debug)]
pub struct FakePart {
    mode: FakeMode,
    /// Bytes left before the connection drops (None = never).
    budget: Option<usize>,
}

impl FakePart {
    pub fn new(mode: FakeMode) -> Self {
        Self { mode, budget: None }
    }

    pub fn mode_disconnect_after(&mut self, bytes: usize) {
        self.budget = Some(bytes);
    }
}

impl DebugPort for FakePart {
    fn describe(&self) -> String {
        "fake probe".into()
    }
    fn abilities(&self) -> Abilities {
        Abilities {
            halt: true,
            resume: true,
            reset: true,
            read: true,
            write: false,
            lock_state: false,
        }
    }
    fn attach(&mut self) -> Result<String, DebugError> {
        match self.mode {
            FakeMode::Locked => Err(DebugError::Refused("access port disabled (part locked)".into())),
            FakeMode::Absent => Err(DebugError::Unavailable("no probe found".into())),
            _ => Ok("fake Cortex-M".into()),
        }
    }
    fn halt(&mut self) -> Result<(), DebugError> {
        Ok(())
    }
    fn resume(&mut self) -> Result<(), DebugError> {
        Ok(())
    }
    fn reset(&mut self) -> Result<(), DebugError> {
        Ok(())
    }
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), DebugError> {
        if let Some(b) = self.budget {
            if b < buf.len() {
                self.budget = Some(0);
                return Err(DebugError::Lost("probe disconnected".into()));
            }
            self.budget = Some(b - buf.len());
        }
        match &self.mode {
            FakeMode::Unlocked(mem) => {
                let a = addr as usize;
                let src = mem
                    .get(a..a + buf.len())
                    .ok_or_else(|| DebugError::Refused(format!("no memory at {addr:#x}")))?;
                buf.copy_from_slice(src);
                Ok(())
            }
            FakeMode::ReadProtected => Err(DebugError::Refused("flash read protection".into())),
            FakeMode::Locked | FakeMode::Absent => Err(DebugError::Unavailable("not attached".into())),
        }
    }
}
