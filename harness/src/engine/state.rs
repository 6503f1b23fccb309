//! The board's state as the run knows it, with one owner: where its console is (off, booting,
//! at a prompt, at the shell since an instant), its last power-on and whether that boot is
//! fresh. Steps ask it and tell it what they did or saw; nothing else holds these facts.

use std::time::Instant;

use crate::config::console::ConsoleSpec;
use crate::console::{Console, Wait};
use crate::power::Action;

/// A prompt the device is known to be waiting at (already consumed from the console's buffer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum AtPrompt {
    Login,
    NewPassword,
    CurrentPassword,
    /// At the shell prompt, seen at this instant: still true while the console stays quiet.
    Shell(Instant),
}

/// Where the board's console is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    /// Nothing known: a step did something whose end it did not see (a command, a reset, a
    /// remote session), or the run has just begun.
    Unknown,
    /// Switched off.
    Off,
    /// Switched on or cycled; no prompt seen since.
    Booting,
    At(AtPrompt),
}

/// The one owner of the board's state.
#[derive(Debug)]
pub struct BoardState {
    place: Place,
    /// The device was power-cycled and seen working at this instant, by this step (taken by
    /// the next step: only a `cycle_unless_fresh` power step right after it may use it).
    fresh: Option<(Instant, String)>,
    /// The last power-on: the network bench's phase then, when, and by which testcase (a
    /// bench identity rotation kept across testcases reuses a boot made under it).
    booted: Option<(u64, Instant, String)>,
}

impl Default for BoardState {
    fn default() -> Self {
        Self {
            place: Place::Unknown,
            fresh: None,
            booted: None,
        }
    }
}

impl BoardState {
    /// The prompt the device waits at, if the run knows one.
    pub(super) fn prompt(&self) -> Option<AtPrompt> {
        match self.place {
            Place::At(p) => Some(p),
            Place::Unknown | Place::Off | Place::Booting => None,
        }
    }

    /// The prompt, consumed: whatever the next step does, the device is no longer known to
    /// wait there.
    pub(super) fn take_prompt(&mut self) -> Option<AtPrompt> {
        let p = self.prompt();
        self.place = Place::Unknown;
        p
    }

    /// The device was seen waiting at this prompt (`None`: seen at none the run knows).
    pub(super) fn saw(&mut self, p: Option<AtPrompt>) {
        self.place = p.map_or(Place::Unknown, Place::At);
    }

    /// The shell prompt was seen just now.
    pub(super) fn saw_shell(&mut self) {
        self.saw(Some(AtPrompt::Shell(Instant::now())));
    }

    /// A step did something after which the console's place is not known.
    pub(super) fn lost(&mut self) {
        self.place = Place::Unknown;
    }

    /// The supply was switched: whatever prompt the device was at, it is not there now.
    pub(super) fn switched(&mut self, action: Action) {
        self.place = match action {
            Action::Off => Place::Off,
            Action::On | Action::Cycle => Place::Booting,
        };
    }

    /// A power step ended: the boot it made (`None` when it switched off, or when no
    /// network bench has phases to tie the boot to).
    pub(super) fn powered(&mut self, boot: Option<(u64, String)>) {
        self.booted = boot.map(|(phase, by)| (phase, Instant::now(), by));
    }

    /// The last power-on, if it happened in this bench phase: when, and by which testcase.
    pub(super) fn booted_in(&self, phase: u64) -> Option<(Instant, &str)> {
        self.booted
            .as_ref()
            .filter(|(p, _, _)| *p == phase)
            .map(|(_, t, by)| (*t, by.as_str()))
    }

    /// The device was power-cycled and seen working at `at`; `by` says how, for the step
    /// that may skip its own cycle.
    pub(super) fn fresh_since(&mut self, at: Instant, by: String) {
        self.fresh = Some((at, by));
    }

    /// The fresh boot, for the step about to run (no later step sees it).
    pub(super) fn take_fresh(&mut self) -> Option<(Instant, String)> {
        self.fresh.take()
    }

    /// A testcase begins or ends: only the shell prompt carries over to the next one (it is
    /// checked again there, against the console's quiet since).
    pub(super) fn between_testcases(&mut self) {
        if !matches!(self.place, Place::At(AtPrompt::Shell(_))) {
            self.place = Place::Unknown;
        }
    }
}

/// Waits up to the boot time for the login or the shell prompt (waking a quiet console with
/// Enter after the profile's `wake_after`): Some(Login | Shell) when one was seen (and
/// consumed), None when neither came. Err: the console was lost.
pub(super) async fn boot_prompt(c: &Console, spec: &ConsoleSpec) -> Result<Option<AtPrompt>, String> {
    let nl = spec.newline.clone().into_bytes();
    Ok(
        match c
            .expect(
                &[&spec.prompts.login, &spec.prompts.shell],
                Instant::now() + spec.boot_time,
                Some((spec.wake_after, nl.as_slice())),
            )
            .await?
        {
            Wait::Found(f) if f.index == 1 => Some(AtPrompt::Shell(Instant::now())),
            Wait::Found(_) => Some(AtPrompt::Login),
            Wait::Timeout => None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_forgets_the_prompt_and_only_the_shell_outlives_a_testcase() {
        let mut s = BoardState::default();
        assert_eq!(s.prompt(), None);
        s.saw(Some(AtPrompt::Login));
        s.between_testcases();
        assert_eq!(s.prompt(), None, "a login prompt is not carried to the next testcase");
        s.saw_shell();
        s.between_testcases();
        assert!(matches!(s.prompt(), Some(AtPrompt::Shell(_))));
        s.switched(Action::Cycle);
        assert_eq!(s.prompt(), None);
        assert_eq!(s.place, Place::Booting);
        s.switched(Action::Off);
        assert_eq!(s.place, Place::Off);
        s.saw(Some(AtPrompt::NewPassword));
        assert_eq!(s.take_prompt(), Some(AtPrompt::NewPassword));
        assert_eq!(s.prompt(), None, "a consumed prompt is gone");
    }

    #[test]
    fn a_boot_counts_in_its_own_phase_and_a_fresh_boot_once() {
        let mut s = BoardState::default();
        s.powered(Some((3, "tc-1".into())));
        assert_eq!(s.booted_in(3).map(|(_, by)| by), Some("tc-1"));
        assert!(s.booted_in(4).is_none());
        s.powered(None);
        assert!(s.booted_in(3).is_none());
        s.fresh_since(Instant::now(), "the update step".into());
        assert!(s.take_fresh().is_some());
        assert!(s.take_fresh().is_none());
    }
}
