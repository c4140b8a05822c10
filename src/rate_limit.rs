//! Limits per client address: on *failed* authentication attempts per TCP peer (a forwarded
//! IP header could be forged to dodge the limit; correct calls never consume from the
//! quota), and on unauthenticated enrolment requests.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

pub struct FailureLimiter {
    limiter: RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>,
    clock: DefaultClock,
}

impl FailureLimiter {
    /// `per_minute` failures are allowed in a burst, then one more per `60 / per_minute` s.
    pub fn per_minute(per_minute: u32) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
        Self {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one failure from `peer`. `Err(wait)` once the peer is over its limit.
    pub fn record_failure(&self, peer: IpAddr) -> Result<(), Duration> {
        self.limiter
            .check_key(&peer)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Counts one attempt, for routes where every attempt counts (not only failures).
    pub fn record_attempt(&self, peer: IpAddr) -> Result<(), Duration> {
        self.record_failure(peer)
    }

    /// Forgets peers whose quota has refilled, so the map stays small.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_after_the_burst_and_per_peer() {
        let limiter = FailureLimiter::per_minute(3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.record_failure(a).is_ok());
        }
        let wait = limiter.record_failure(a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(20));
        assert!(
            limiter.record_failure(b).is_ok(),
            "other peers are unaffected"
        );
    }
}
