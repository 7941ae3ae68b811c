//! Sending policy: which failures are worth another attempt (the OTLP table, plus failures of
//! the link itself that never reached the server), and how long to wait before it (exponential
//! backoff with full jitter, or the server's `RetryInfo` delay when it gives one).

use super::outbox::Rejection;
use crate::grpc::client::SubmitFailure;
use rand::Rng;
use std::time::Duration;
use tonic::Code;

/// The server asked for longer than this: wait this long instead, and ask again.
const MAX_SERVER_DELAY: Duration = Duration::from_secs(3600);
/// Full jitter may draw a delay close to zero; never retry faster than this.
const MIN_DELAY: Duration = Duration::from_millis(20);

/// Words with which tonic and hyper describe a call that died in the transport (connection
/// reset, aggregator killed mid-call). Such a status was never sent by the aggregator, so the
/// OTLP rule "never retry UNKNOWN / INTERNAL" (which is about the server's answers) does not
/// apply: the report may or may not have arrived, and resending it under the same submission
/// id is exactly what makes that safe.
const TRANSPORT_WORDS: [&str; 8] = [
    "transport error",
    "h2 protocol error",
    "connection reset",
    "connection closed",
    "broken pipe",
    "error trying to connect",
    "operation was canceled",
    "connection error",
];

/// Whether sending the same report again later may succeed.
pub fn is_retryable(failure: &SubmitFailure) -> bool {
    if failure.retryable {
        return true;
    }
    matches!(failure.code, Code::Unknown | Code::Internal) && {
        let message = failure.message.to_ascii_lowercase();
        TRANSPORT_WORDS.iter().any(|w| message.contains(w))
    }
}

/// A short, readable reason for logs and `agent status`.
pub fn reason(failure: &SubmitFailure) -> String {
    let code = format!("{:?}", failure.code);
    let mut message: String = failure.message.chars().take(300).collect();
    if message.is_empty() {
        message = "no message".into();
    }
    format!("{code}: {message}")
}

pub fn rejection(failure: &SubmitFailure) -> Rejection {
    Rejection {
        code: format!("{:?}", failure.code),
        message: failure.message.clone(),
        violations: failure.violations.clone(),
    }
}

/// Backoff of the link to the aggregator. It is shared by all entries on purpose: a retryable
/// failure almost always means the link or the aggregator is down, and 200 queued reports
/// should then wait together rather than each start its own countdown from one second.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            failures: 0,
        }
    }

    /// A call got through: the next failure starts from the initial delay again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The ceiling for the next delay: initial × 2^(failures so far), at most `max`.
    fn ceiling(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.failures.min(30));
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The delay before the next attempt after one more failure. `retry_after` is the server's
    /// `RetryInfo`: honoured (never retried earlier), plus up to 10 % so that all districts
    /// told "1 s" do not come back in the same instant.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let mut rng = rand::rng();
        match retry_after {
            Some(asked) => {
                let asked = asked.min(MAX_SERVER_DELAY);
                let spread = asked.as_secs_f64() * 0.1;
                asked + Duration::from_secs_f64(rng.random_range(0.0..=spread))
            }
            None => {
                // Full jitter: uniform over [0, ceiling].
                let drawn = rng.random_range(0.0..=ceiling.as_secs_f64());
                Duration::from_secs_f64(drawn).max(MIN_DELAY.min(ceiling))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: Code, message: &str, retryable: bool) -> SubmitFailure {
        SubmitFailure {
            code,
            message: message.into(),
            violations: Vec::new(),
            retryable,
            retry_after: None,
        }
    }

    #[test]
    fn the_otlp_table_plus_transport_failures() {
        assert!(is_retryable(&failure(Code::Unavailable, "down", true)));
        assert!(!is_retryable(&failure(Code::InvalidArgument, "bad", false)));
        assert!(!is_retryable(&failure(Code::AlreadyExists, "id", false)));
        assert!(!is_retryable(&failure(
            Code::Internal,
            "store error",
            false
        )));
        assert!(is_retryable(&failure(
            Code::Unknown,
            "transport error: connection reset by peer",
            false
        )));
        assert!(is_retryable(&failure(
            Code::Internal,
            "h2 protocol error: broken pipe",
            false
        )));
        assert!(!is_retryable(&failure(
            Code::PermissionDenied,
            "connection error",
            false
        )));
    }

    #[test]
    fn delays_double_up_to_the_cap_and_honour_retry_info() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        for expected_ceiling in [1, 2, 4, 8, 8, 8] {
            let d = b.next_delay(None);
            assert!(d <= Duration::from_secs(expected_ceiling), "{d:?}");
        }
        let d = b.next_delay(Some(Duration::from_secs(30)));
        assert!(
            d >= Duration::from_secs(30) && d <= Duration::from_secs(33),
            "{d:?}"
        );
        b.reset();
        assert!(b.next_delay(None) <= Duration::from_secs(1));
    }
}
