//! A per-principal rate limit (token bucket): a district agent gone wrong cannot flood the
//! aggregator, and a well-behaved one is told when to come back (RetryInfo).

use super::Principal;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained calls per second per principal.
    pub per_second: f64,
    /// Calls allowed in a burst above the sustained rate.
    pub burst: u32,
}

pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<Principal, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok` to go ahead, or how long to wait before the next call would be let through.
    pub fn check(&self, principal: &Principal, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(self.limit.burst.max(1));
        let rate = self.limit.per_second.max(f64::MIN_POSITIVE);
        // A poisoned lock only means another call panicked mid-update; the counts are still
        // usable.
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = buckets.entry(principal.clone()).or_insert((capacity, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * rate;
        *tokens = (*tokens + refill).min(capacity);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_waits_then_refills() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 2.0,
            burst: 3,
        });
        let t0 = Instant::now();
        let p = Principal::Analyst;
        for _ in 0..3 {
            assert!(limiter.check(&p, t0).is_ok());
        }
        // Empty bucket at 2 tokens/s: the next token comes in 0.5 s.
        let wait = limiter.check(&p, t0).expect_err("over the burst");
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9, "{wait:?}");
        // Another principal has its own bucket.
        assert!(limiter.check(&Principal::Admin, t0).is_ok());
        assert!(limiter.check(&p, t0 + Duration::from_millis(500)).is_ok());
    }
}
