//! Denied verify calls, logged without letting a flood fill the disk: the first denial of
//! each kind (reason, certificate or source, enforced or audited) in a window is logged at
//! once; repeats are counted and logged as one line per kind when the window ends. The
//! metrics keep exact counts either way.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// How long repeats of one kind are gathered before their count is logged.
pub const WINDOW: Duration = Duration::from_secs(10);

/// Kinds kept apart per window; beyond this, repeats of further kinds are counted together.
const MAX_KINDS: usize = 1024;

/// What makes two denials the same for the log.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DenialKind {
    pub reason: &'static str,
    /// The certificate's fingerprint, or the refused peer, as the log line names it.
    pub subject: String,
    pub enforced: bool,
}

/// Repeats counted in a window that has ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Repeats {
    pub kinds: Vec<(DenialKind, u64)>,
    /// Repeats of kinds beyond [`MAX_KINDS`].
    pub others: u64,
}

#[derive(Default)]
pub struct DenialLog {
    window: Mutex<Window>,
}

#[derive(Default)]
struct Window {
    /// Kinds seen in this window, with the repeats after the first.
    seen: HashMap<DenialKind, u64, foldhash::fast::RandomState>,
    others: u64,
}

impl DenialLog {
    /// Whether this denial is the first of its kind in the current window (log it now);
    /// otherwise it is counted for [`Self::take_repeats`].
    pub fn first_of_kind(&self, kind: &DenialKind) -> bool {
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(repeats) = window.seen.get_mut(kind) {
            *repeats += 1;
            return false;
        }
        if window.seen.len() >= MAX_KINDS {
            window.others += 1;
            return false;
        }
        window.seen.insert(kind.clone(), 0);
        true
    }

    /// Ends the window: the kinds that repeated, with their counts, most first. The next
    /// window starts empty, so the next denial of any kind is logged at once again.
    pub fn take_repeats(&self) -> Repeats {
        let ended =
            std::mem::take(&mut *self.window.lock().unwrap_or_else(PoisonError::into_inner));
        let mut kinds: Vec<_> = ended.seen.into_iter().filter(|(_, n)| *n > 0).collect();
        kinds.sort_by_key(|(_, repeats)| std::cmp::Reverse(*repeats));
        Repeats {
            kinds,
            others: ended.others,
        }
    }

    /// Ends the window and logs its repeats.
    pub fn log_repeats(&self) {
        let repeats = self.take_repeats();
        for (kind, count) in repeats.kinds {
            tracing::warn!(
                reason = kind.reason,
                subject = kind.subject,
                enforced = kind.enforced,
                repeats = count,
                "verify denied again (repeats of a denial logged earlier)"
            );
        }
        if repeats.others > 0 {
            tracing::warn!(
                repeats = repeats.others,
                "verify denied again (repeats of other kinds, too many to name)"
            );
        }
    }

    /// Logs the repeats at the end of every window until the task is aborted.
    pub fn spawn_reporter(self: &std::sync::Arc<Self>) -> tokio::task::JoinHandle<()> {
        let log = std::sync::Arc::clone(self);
        tokio::spawn(async move {
            // The first window ends one WINDOW after start, not at once.
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + WINDOW, WINDOW);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                log.log_repeats();
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(reason: &'static str, subject: &str) -> DenialKind {
        DenialKind {
            reason,
            subject: subject.to_owned(),
            enforced: true,
        }
    }

    #[test]
    fn the_first_of_each_kind_is_logged_and_repeats_are_counted() {
        let log = DenialLog::default();
        assert!(log.first_of_kind(&kind("unknown_certificate", "sha256:aa")));
        for _ in 0..41 {
            assert!(!log.first_of_kind(&kind("unknown_certificate", "sha256:aa")));
        }
        assert!(log.first_of_kind(&kind("unknown_certificate", "sha256:bb")));
        assert!(log.first_of_kind(&kind("agent_disabled", "sha256:aa")));
        let audited = DenialKind {
            enforced: false,
            ..kind("agent_disabled", "sha256:aa")
        };
        assert!(log.first_of_kind(&audited));

        assert_eq!(
            log.take_repeats(),
            Repeats {
                kinds: vec![(kind("unknown_certificate", "sha256:aa"), 41)],
                others: 0,
            }
        );
        assert!(
            log.first_of_kind(&kind("unknown_certificate", "sha256:aa")),
            "a new window logs the first again"
        );
    }

    #[test]
    fn a_flood_of_distinct_kinds_is_bounded() {
        let log = DenialLog::default();
        let logged = (0..MAX_KINDS * 3)
            .filter(|n| log.first_of_kind(&kind("unknown_certificate", &n.to_string())))
            .count();
        assert_eq!(logged, MAX_KINDS);
        let repeats = log.take_repeats();
        assert!(repeats.kinds.is_empty());
        assert_eq!(repeats.others, 2 * MAX_KINDS as u64);
    }
}
