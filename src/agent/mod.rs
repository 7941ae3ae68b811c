//! The district agent: a long-running process on a district's own machine that reads each
//! period's figures from the district's data when they are due, keeps every report in a
//! durable outbox, and delivers it to the province over links that drop, exactly once.
//!
//! One pass of the loop: *collect* (for every configured data set, read the source of every
//! due period; new content becomes an outbox entry, committed), then *send* (every due outbox
//! entry, oldest first; see `outbox` for the guarantees and `sender` for the retry policy).

mod collect;
pub mod outbox;
pub mod schedule;
pub mod sender;
pub mod settings;
pub mod source;
pub mod sql_source;

pub use outbox::{Entry, EntryState, Outbox, OutboxError, content_hash};
pub use schedule::Schedule;
pub use settings::{AgentLayer, AgentSettings, SettingsError};

use crate::domain::{Catalog, PeriodId};
use crate::grpc::client::AggregatorClient;
use chrono::{DateTime, Utc};
use sender::Backoff;
use source::Source;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error("{0}")]
    Catalog(String),
    #[error("{0}")]
    Client(String),
    #[error("{0}")]
    Resend(String),
}

/// One configured data set: its schedule and where its numbers come from.
pub struct Plan {
    pub data_set: String,
    pub schedule: Schedule,
    source: Source,
}

impl Plan {
    pub fn source_description(&self) -> String {
        self.source.describe()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectSummary {
    /// First reports of a period put in the outbox.
    pub queued: usize,
    /// New content for a period that already had an entry.
    pub corrections: usize,
    /// Due periods whose source has no data yet.
    pub missing: usize,
    /// Due periods whose source could not be read.
    pub errors: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendSummary {
    pub sent: usize,
    pub rejected: usize,
    /// Attempts that failed and were rescheduled.
    pub retrying: usize,
}

/// What `resend` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Resent {
    /// The source now says something else: a new entry was queued.
    NewEntry(Box<Entry>),
    /// Same content, put back in the queue (with its new submission id, if it needed one).
    Requeued(Box<Entry>),
    AlreadyQueued(Box<Entry>),
    AlreadySent(Box<Entry>),
    /// A newer entry of the same period exists; resend that one instead.
    Replaced {
        newer: Box<Entry>,
    },
}

pub struct Agent {
    settings: AgentSettings,
    plans: Vec<Plan>,
    outbox: Outbox,
    client: Option<AggregatorClient>,
    backoff: Backoff,
    paused_until: Option<Instant>,
    /// (data set, period) whose "report due" line was logged by this process.
    announced: HashSet<(String, String)>,
    /// The last source error logged per (data set, period): logged again only when it changes.
    source_errors: HashMap<(String, String), String>,
    /// The periods last logged as missing, per data set.
    missing_logged: HashMap<String, Vec<PeriodId>>,
}

/// Sends per `send_due` call at most: bounds the loop even if the outbox misbehaves.
const MAX_SENDS_PER_PASS: usize = 100_000;
/// `run_once` waits out retries this short, and gives up after this many failures in a row.
const ONCE_MAX_WAIT: Duration = Duration::from_secs(10);
const ONCE_MAX_FAILURES: usize = 8;

fn load_catalog(settings: &AgentSettings) -> Result<Catalog, AgentError> {
    match &settings.catalog {
        None => Catalog::embedded().map_err(|e| AgentError::Catalog(e.to_string())),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                AgentError::Catalog(format!("cannot read catalog {}: {e}", path.display()))
            })?;
            Catalog::from_toml(&text)
                .map_err(|e| AgentError::Catalog(format!("catalog {}: {e}", path.display())))
        }
    }
}

fn instant_at(t: DateTime<Utc>) -> Instant {
    Instant::now() + (t - Utc::now()).to_std().unwrap_or(Duration::ZERO)
}

/// Times in logs as a district operator reads them: Vietnam time.
fn vn(t: DateTime<Utc>) -> String {
    t.with_timezone(&crate::domain::period::vietnam_offset())
        .format("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

fn list_periods(periods: &[PeriodId]) -> String {
    let shown: Vec<String> = periods.iter().take(6).map(|p| p.to_string()).collect();
    if periods.len() > shown.len() {
        format!("{} … ({} in all)", shown.join(", "), periods.len())
    } else {
        shown.join(", ")
    }
}

impl Agent {
    /// Checks the settings against the catalog and opens the outbox. Does not contact the
    /// aggregator: the agent starts (and `status` works) while the province is out of reach.
    pub async fn new(settings: AgentSettings) -> Result<Agent, AgentError> {
        let catalog = load_catalog(&settings)?;
        let mut plans = Vec::new();
        for r in &settings.reports {
            let ds = catalog.data_set(&r.data_set).ok_or_else(|| {
                let known: Vec<&str> = catalog
                    .data_sets()
                    .iter()
                    .map(|d| d.code.as_str())
                    .collect();
                AgentError::Catalog(format!(
                    "[[reports]] names data set {}, which the catalog does not have (known: {})",
                    r.data_set,
                    known.join(", ")
                ))
            })?;
            if r.first_period.period_type() != ds.period_type {
                return Err(AgentError::Catalog(format!(
                    "[[reports]] data set {}: first_period {} is {}; the data set takes {} \
                     periods such as {}",
                    r.data_set,
                    r.first_period,
                    r.first_period.period_type(),
                    ds.period_type,
                    ds.period_type.example()
                )));
            }
            if r.send_after_days > ds.grace_days {
                warn!(
                    data_set = %r.data_set,
                    send_after_days = r.send_after_days,
                    grace_days = ds.grace_days,
                    "reports are scheduled after their deadline; they will arrive late"
                );
            }
            plans.push(Plan {
                data_set: r.data_set.clone(),
                schedule: Schedule {
                    period_type: ds.period_type,
                    calendar: ds.calendar,
                    grace_days: ds.grace_days,
                    first_period: r.first_period,
                    send_after_days: r.send_after_days,
                    at: r.at,
                },
                source: Source::new(&r.source),
            });
        }
        let outbox = Outbox::open(&settings.outbox, &settings.unit).await?;
        Ok(Agent {
            backoff: Backoff::new(settings.retry_initial, settings.retry_max),
            settings,
            plans,
            outbox,
            client: None,
            paused_until: None,
            announced: HashSet::new(),
            source_errors: HashMap::new(),
            missing_logged: HashMap::new(),
        })
    }

    pub fn settings(&self) -> &AgentSettings {
        &self.settings
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    pub fn plans(&self) -> &[Plan] {
        &self.plans
    }

    fn client(&mut self) -> Result<&mut AggregatorClient, AgentError> {
        if self.client.is_none() {
            let client = AggregatorClient::connect_lazy_with(
                &self.settings.endpoint,
                self.settings.tls.as_ref(),
            )
            .map_err(|e| AgentError::Client(format!("{e:#}")))?;
            self.client = Some(client);
        }
        self.client
            .as_mut()
            .ok_or_else(|| AgentError::Client("no client".into()))
    }

    /// Compares the configured data sets with the aggregator's catalog, when it answers. Only
    /// logs: the agent keeps collecting while the province is unreachable.
    pub async fn check_catalog(&mut self) -> Result<(), AgentError> {
        let client = self.client()?;
        let answer = tokio::time::timeout(Duration::from_secs(10), client.data_sets()).await;
        let remote = match answer {
            Ok(Ok(list)) => list,
            Ok(Err(f)) => {
                info!(reason = %sender::reason(&f), "aggregator not reachable yet; using the local catalog");
                return Ok(());
            }
            Err(_) => {
                info!("aggregator did not answer in 10 s; using the local catalog");
                return Ok(());
            }
        };
        for plan in &self.plans {
            let expected = format!(
                "PERIOD_TYPE_{}",
                plan.schedule.period_type.as_str().to_ascii_uppercase()
            );
            match remote.iter().find(|d| d.code == plan.data_set) {
                None => warn!(
                    data_set = %plan.data_set,
                    "the aggregator does not know this data set; its reports will be rejected"
                ),
                Some(d) if d.period_type != expected => warn!(
                    data_set = %plan.data_set,
                    local = %expected,
                    aggregator = %d.period_type,
                    "the aggregator's catalog has another period type; check the catalog setting"
                ),
                Some(_) => {
                    debug!(data_set = %plan.data_set, "data set confirmed by the aggregator")
                }
            }
        }
        Ok(())
    }

    /// Sends every due entry, oldest first, until the outbox has none due, a failure asks to
    /// wait (then every entry waits: see `sender::Backoff`), or `stop` turns true.
    pub async fn send_due(
        &mut self,
        stop: &watch::Receiver<bool>,
    ) -> Result<SendSummary, AgentError> {
        let mut summary = SendSummary::default();
        let mut sends = 0;
        while sends < MAX_SENDS_PER_PASS {
            if self.paused_until.is_some_and(|t| Instant::now() < t) {
                break;
            }
            let batch = self.outbox.due(Utc::now(), 64).await?;
            if batch.is_empty() {
                break;
            }
            for entry in batch {
                if *stop.borrow() {
                    return Ok(summary);
                }
                sends += 1;
                if let Some(delay) = self.send_one(&entry, &mut summary).await? {
                    self.paused_until = Some(Instant::now() + delay);
                    return Ok(summary);
                }
            }
        }
        Ok(summary)
    }

    /// One attempt; `Some(delay)` when the attempt failed and should be repeated.
    async fn send_one(
        &mut self,
        entry: &Entry,
        summary: &mut SendSummary,
    ) -> Result<Option<Duration>, AgentError> {
        let unit = self.settings.unit.clone();
        let result = self.client()?.submit(&entry.draft).await;
        let now = Utc::now();
        match result {
            Ok(receipt) => {
                self.outbox.mark_sent(entry.id, &receipt, now).await?;
                self.backoff.reset();
                self.paused_until = None;
                summary.sent += 1;
                info!(unit = %unit, data_set = %entry.data_set, period = %entry.period, entry = entry.id,
                      revision = receipt.revision, status = receipt.status.as_str(),
                      on_time = receipt.on_time, "report sent");
                for w in &receipt.warnings {
                    warn!(unit = %unit, data_set = %entry.data_set, period = %entry.period, warning = %w,
                          "aggregator warning");
                }
                Ok(None)
            }
            Err(failure) if sender::is_retryable(&failure) => {
                let delay = self.backoff.next_delay(failure.retry_after);
                let reason = sender::reason(&failure);
                let next = now + chrono::Duration::from_std(delay).unwrap_or_default();
                self.outbox.reschedule(entry.id, next, &reason, now).await?;
                summary.retrying += 1;
                let retry_in_s = (delay.as_secs_f64() * 1000.0).round() / 1000.0;
                // A short wait the aggregator asked for is its rate limit pacing a burst (after
                // an outage, 200 queued reports): normal flow, not news for the operator.
                if failure
                    .retry_after
                    .is_some_and(|d| d < Duration::from_secs(1))
                {
                    debug!(unit = %unit, data_set = %entry.data_set, period = %entry.period,
                           entry = entry.id, retry_in_s, reason = %reason, "paced by the aggregator");
                } else {
                    warn!(unit = %unit, data_set = %entry.data_set, period = %entry.period,
                          entry = entry.id, attempt = entry.attempts + 1, retry_in_s,
                          reason = %reason, "retrying");
                }
                Ok(Some(delay))
            }
            Err(failure) => {
                let rejection = sender::rejection(&failure);
                self.outbox.mark_rejected(entry.id, &rejection, now).await?;
                // The aggregator answered: the link works.
                self.backoff.reset();
                summary.rejected += 1;
                let violations: Vec<String> = failure
                    .violations
                    .iter()
                    .map(|v| format!("{} [{}]: {}", v.field, v.rule, v.description))
                    .collect();
                warn!(unit = %unit, data_set = %entry.data_set, period = %entry.period, entry = entry.id,
                      code = ?failure.code, reason = %failure.message,
                      violations = %violations.join("; "),
                      "report rejected; fix the source (or run `tonghop agent resend`)");
                Ok(None)
            }
        }
    }

    /// One collection pass, then sending until the outbox has nothing due: what `tonghop
    /// agent run --once` does. Short waits are sat out (the aggregator's rate limit answers
    /// "come back in 5 ms"); a wait longer than `ONCE_MAX_WAIT`, or `ONCE_MAX_FAILURES` failed
    /// attempts in a row (the aggregator is down), ends the run with the entries still queued
    /// for the next one.
    pub async fn run_once(&mut self) -> Result<(CollectSummary, SendSummary), AgentError> {
        let collected = self.collect(Utc::now()).await?;
        let (_tx, rx) = watch::channel(false);
        let mut total = SendSummary::default();
        let mut failures_in_a_row = 0;
        loop {
            let pass = self.send_due(&rx).await?;
            total.sent += pass.sent;
            total.rejected += pass.rejected;
            total.retrying += pass.retrying;
            if pass.sent + pass.rejected > 0 {
                failures_in_a_row = 0;
            }
            failures_in_a_row += pass.retrying;
            if pass.retrying == 0 || failures_in_a_row >= ONCE_MAX_FAILURES {
                break;
            }
            let wait = self
                .paused_until
                .map(|t| t.saturating_duration_since(Instant::now()))
                .unwrap_or_default();
            if wait > ONCE_MAX_WAIT {
                break;
            }
            tokio::time::sleep(wait).await;
        }
        Ok((collected, total))
    }

    /// Runs until `shutdown` completes; stops between sends, never in the middle of writing.
    pub async fn run_until(
        &mut self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), AgentError> {
        let (tx, mut rx) = watch::channel(false);
        let watcher = tokio::spawn(async move {
            shutdown.await;
            let _ = tx.send(true);
        });
        info!(unit = %self.settings.unit, endpoint = %self.settings.endpoint,
              outbox = %self.outbox.path().display(), data_sets = self.plans.len(), "agent started");
        // A stop must not wait out the catalog's 10 s timeout on a link that swallows packets.
        tokio::select! {
            checked = self.check_catalog() => checked?,
            _ = rx.changed() => {}
        }
        let mut next_collect = Instant::now();
        while !*rx.borrow() {
            if Instant::now() >= next_collect {
                if let Err(e) = self.collect(Utc::now()).await {
                    error!(error = %e, "collection pass failed; trying again next pass");
                }
                next_collect = Instant::now() + self.settings.poll_interval;
            }
            if let Err(e) = self.send_due(&rx).await {
                error!(error = %e, "sending failed; trying again shortly");
                self.paused_until = Some(Instant::now() + self.settings.retry_initial);
            }
            let now = Utc::now();
            // Wake for the next collection, the next period falling due, or the next attempt.
            for plan in &self.plans {
                if let Some((_, at)) = plan.schedule.next_due(now) {
                    next_collect = next_collect.min(instant_at(at));
                }
            }
            let mut wake = next_collect;
            // An unreadable outbox (disk trouble) must not end the service: try again shortly.
            let next_attempt = self.outbox.next_attempt().await.unwrap_or_else(|e| {
                error!(error = %e, "cannot read the outbox; trying again shortly");
                Some(Utc::now() + chrono::Duration::seconds(5))
            });
            if let Some(at) = next_attempt {
                let mut send_at = instant_at(at);
                if let Some(paused) = self.paused_until {
                    send_at = send_at.max(paused);
                }
                wake = wake.min(send_at);
            }
            let wake = wake.max(Instant::now() + Duration::from_millis(10));
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = rx.changed() => {}
            }
        }
        watcher.abort();
        info!("agent stopped");
        Ok(())
    }

    pub async fn close(mut self) {
        for plan in &mut self.plans {
            plan.source.close().await;
        }
        self.outbox.close().await;
    }
}
