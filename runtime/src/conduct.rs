//! A provider that has just run past its limits (its CPU budget, its
//! memory, or a crash) is held back for a while: one call of it at a time,
//! and a call that finds that one busy is refused at once rather than
//! queued. A hostile or broken component called over and over can then take
//! at most one core and one call slot, and the calls to every other provider
//! go on at their own speed; an honest provider that failed once is back to
//! full speed [`HELD_BACK_FOR`] after its last failure.

use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

/// How long after its last failure a provider stays held back.
pub const HELD_BACK_FOR: Duration = Duration::from_secs(5);

/// The record of one provider's recent failures, shared by all its calls.
#[derive(Debug, Default)]
pub(super) struct Conduct {
    /// When the last failure was, if any.
    failed_at: Mutex<Option<Instant>>,
    /// The one call a held-back provider may have running.
    lane: Mutex<()>,
}

/// Leave for one call to run.
pub(super) enum Leave<'a> {
    /// The provider is in good standing: no limit.
    Free,
    /// Held back, and this call has the one lane (released when dropped).
    Lane(#[allow(dead_code)] MutexGuard<'a, ()>),
    /// Held back, and another call has the lane.
    Refused,
}

impl Conduct {
    /// Leave for a call now.
    pub(super) fn leave(&self) -> Leave<'_> {
        let held_back = self
            .failed_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| at.elapsed() < HELD_BACK_FOR);
        if !held_back {
            return Leave::Free;
        }
        match self.lane.try_lock() {
            Ok(lane) => Leave::Lane(lane),
            Err(TryLockError::Poisoned(e)) => Leave::Lane(e.into_inner()),
            Err(TryLockError::WouldBlock) => Leave::Refused,
        }
    }

    /// Notes that a call ran past a limit or crashed.
    pub(super) fn failed(&self) {
        *self.failed_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Free until a failure; then one call at a time, a second refused.
    #[test]
    fn one_at_a_time_after_a_failure() {
        let conduct = Conduct::default();
        assert!(matches!(conduct.leave(), Leave::Free));
        conduct.failed();
        let first = conduct.leave();
        assert!(matches!(first, Leave::Lane(_)));
        assert!(matches!(conduct.leave(), Leave::Refused));
        drop(first);
        assert!(matches!(conduct.leave(), Leave::Lane(_)));
    }
}
