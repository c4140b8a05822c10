//! `certgate renew --daemon`: stays up beside the service that uses the certificate,
//! renews it when due, runs the hook, and rides out certgate or the proxy being away.

use std::ops::ControlFlow;
use std::time::Duration;

use rand::Rng;
use time::OffsetDateTime;
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::hook::{Hook, Renewed};
use super::{RenewAt, RenewOptions, Renewal, certificate_validity, hints, renew_if_due};

/// When to look at the certificate.
pub struct Schedule {
    pub renew_at: RenewAt,
    /// The longest wait between two checks: files replaced by someone else, or a clock
    /// that jumped, are noticed within it.
    pub interval: Duration,
}

/// The first retry after a failure; each further one waits twice as long, up to the
/// interval.
const FIRST_RETRY: Duration = Duration::from_secs(5);

/// Runs until SIGTERM or SIGINT; SIGHUP makes it check at once (`systemctl reload`). Every
/// line of `log` is one event.
pub async fn run_daemon(
    options: &RenewOptions,
    schedule: &Schedule,
    hook: Option<&Hook>,
    log: impl Fn(&str),
) -> anyhow::Result<()> {
    let mut signals = Signals {
        terminate: signal(SignalKind::terminate())?,
        hangup: signal(SignalKind::hangup())?,
    };
    let mut failures: u32 = 0;
    let mut reported_due = None;
    // The agent whose renewal the hook has not yet announced successfully: a failed hook
    // is retried with the renewals' backoff, or the service would keep the old files.
    let mut unannounced: Option<String> = None;
    loop {
        if let (Some(agent_id), Some(hook)) = (&unannounced, hook) {
            let renewed = Renewed {
                agent_id,
                out: &options.out,
            };
            match hook.run(&renewed).await {
                Ok(()) => {
                    log("reload hook ran");
                    unannounced = None;
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    log(&format!("reload hook failed: {error:#}"));
                    let wait = retry_after(failures).min(schedule.interval);
                    if sleep_or_stop(wait, &mut signals, &log).await.is_break() {
                        return Ok(());
                    }
                    continue;
                }
            }
        }
        let now = OffsetDateTime::now_utc();
        let wait = match renew_if_due(options, Some(schedule.renew_at), now).await {
            Ok(Renewal::Renewed(issued)) => {
                failures = 0;
                log(&format!(
                    "renewed: agent {}, certificate valid until {}",
                    issued.agent_id, issued.not_after
                ));
                unannounced = Some(issued.agent_id);
                Duration::ZERO
            }
            Ok(Renewal::NotDue { due_at }) => {
                failures = 0;
                if reported_due != Some(due_at) {
                    log(&format!("not due; renewal at {}", rfc3339(due_at)));
                    reported_due = Some(due_at);
                }
                (due_at - now).try_into().unwrap_or(Duration::ZERO)
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                log(&format!("renewal failed: {error:#}"));
                if let Some(hint) = hints::for_failure(&error) {
                    log(&format!("hint: {hint}"));
                }
                if certificate_validity(&options.certificate)
                    .is_ok_and(|validity| validity.not_after <= now)
                {
                    log(
                        "hint: the certificate has expired, so it cannot renew itself; \
                         enrol this host again with a new token",
                    );
                }
                retry_after(failures)
            }
        };
        if sleep_or_stop(wait.min(schedule.interval), &mut signals, &log)
            .await
            .is_break()
        {
            return Ok(());
        }
    }
}

struct Signals {
    terminate: Signal,
    hangup: Signal,
}

/// Sleeps for `wait` plus jitter, or until SIGHUP; `Break` when SIGTERM or SIGINT came
/// first.
async fn sleep_or_stop(
    wait: Duration,
    signals: &mut Signals,
    log: impl Fn(&str),
) -> ControlFlow<()> {
    let wait = jittered(wait);
    if wait.is_zero() {
        return ControlFlow::Continue(());
    }
    tokio::select! {
        () = tokio::time::sleep(wait) => ControlFlow::Continue(()),
        _ = signals.hangup.recv() => {
            log("SIGHUP: checking the certificate now");
            ControlFlow::Continue(())
        }
        _ = signals.terminate.recv() => ControlFlow::Break(()),
        _ = tokio::signal::ctrl_c() => ControlFlow::Break(()),
    }
}

fn retry_after(failures: u32) -> Duration {
    FIRST_RETRY.saturating_mul(1 << failures.saturating_sub(1).min(16))
}

/// Up to a tenth longer, so that a fleet enrolled in the same minute does not renew in
/// the same second.
fn jittered(wait: Duration) -> Duration {
    wait + wait.mul_f64(rand::thread_rng().gen_range(0.0..0.1))
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_by_doubling() {
        assert_eq!(retry_after(1), Duration::from_secs(5));
        assert_eq!(retry_after(2), Duration::from_secs(10));
        assert_eq!(retry_after(4), Duration::from_secs(40));
        assert!(retry_after(u32::MAX) > Duration::from_secs(86_400));
    }

    #[test]
    fn jitter_only_lengthens_a_wait_by_at_most_a_tenth() {
        for _ in 0..100 {
            let wait = jittered(Duration::from_secs(100));
            assert!(wait >= Duration::from_secs(100) && wait <= Duration::from_secs(110));
        }
        assert_eq!(jittered(Duration::ZERO), Duration::ZERO);
    }
}
