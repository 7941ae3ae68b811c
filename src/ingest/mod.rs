//! The ingest use case: check a report once, store it once, answer with a receipt only after
//! commit. Free of gRPC so the same path serves the server, the demo and tests.

use crate::domain::{
    Catalog, Receipt, ReceiptStatus, ReportDraft, UnitTree, ValidationLimits, Violation,
    period::vietnam_today, validation,
};
use crate::store::{NewRevision, Recorded, Store, StoreError};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tracing::{info, warn};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IngestError {
    /// The report breaks one or more rules; nothing was stored.
    #[error("report rejected: {} problem(s)", .0.len())]
    Invalid(Vec<Violation>),
    /// The submission id was already used for a report with other content.
    #[error(
        "submission id {submission_id} was already used for other content (revision \
         {existing_revision}); choose a new submission id for a corrected report"
    )]
    SubmissionIdReused {
        submission_id: String,
        existing_revision: u32,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where "now" comes from: the wall clock in production, a fixed instant in tests of deadlines.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

#[derive(Clone)]
pub struct Ingestor {
    catalog: Arc<Catalog>,
    units: Arc<UnitTree>,
    store: Arc<dyn Store>,
    limits: ValidationLimits,
    clock: Clock,
}

impl Ingestor {
    pub fn new(
        catalog: Arc<Catalog>,
        units: Arc<UnitTree>,
        store: Arc<dyn Store>,
        limits: ValidationLimits,
    ) -> Self {
        Ingestor {
            catalog,
            units,
            store,
            limits,
            clock: Arc::new(Utc::now),
        }
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    pub fn units(&self) -> &Arc<UnitTree> {
        &self.units
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub async fn submit(&self, draft: ReportDraft) -> Result<Receipt, IngestError> {
        let now = (self.clock)();
        let checked = match validation::validate(
            &draft,
            &self.catalog,
            &self.units,
            &self.limits,
            vietnam_today(now),
        ) {
            Ok(checked) => checked,
            Err(violations) => {
                let rules: Vec<&str> = violations.iter().map(|v| v.rule.as_str()).collect();
                // What the client sent is untrusted: escaped and cut, so it cannot forge log
                // lines, drive a terminal, or flood the log.
                warn!(
                    submission = ?loggable(&draft.submission_id),
                    unit = ?loggable(&draft.unit_code),
                    period = ?loggable(&draft.period),
                    problems = violations.len(),
                    rules = %rules.join(","),
                    "report rejected"
                );
                return Err(IngestError::Invalid(violations));
            }
        };
        // What the log lines name; the report itself moves into the store.
        let report = &checked.report;
        let (submission_id, unit, data_set, period) = (
            report.submission_id.clone(),
            report.unit.clone(),
            report.data_set.clone(),
            report.period,
        );
        let new = NewRevision::received(checked, now);
        match self.store.record(new).await? {
            Recorded::Stored(receipt) | Recorded::Duplicate(receipt) => {
                info!(
                    submission = %receipt.submission_id,
                    unit = %unit,
                    data_set = %data_set,
                    period = %period,
                    revision = receipt.revision,
                    status = receipt.status.as_str(),
                    on_time = receipt.on_time,
                    "report accepted"
                );
                Ok(receipt)
            }
            Recorded::Conflict {
                existing_revision, ..
            } => {
                warn!(
                    submission = %submission_id,
                    unit = %unit,
                    existing_revision,
                    "submission id reused for other content"
                );
                Err(IngestError::SubmissionIdReused {
                    submission_id: submission_id.to_string(),
                    existing_revision,
                })
            }
        }
    }

    /// A batch: each report on its own (one bad report does not hold back the others), and up
    /// to `BATCH_IN_FLIGHT` of them in the store's queue at once, so that they share group
    /// commits instead of each waiting for a commit of its own. `Err` entries, refused before
    /// validation (by authorization, say), keep their place in the answer. A batch that names
    /// one submission id or one report (unit, data set, period) twice is taken one report
    /// after another instead: then the order sent decides revision numbers and which copy is
    /// the duplicate, as it does for separate calls.
    pub async fn submit_batch<E>(
        &self,
        batch: Vec<Result<ReportDraft, E>>,
    ) -> Vec<Result<Result<Receipt, IngestError>, E>> {
        use futures::StreamExt;
        let together = !names_anything_twice(batch.iter().filter_map(|entry| entry.as_ref().ok()));
        let in_flight = if together { BATCH_IN_FLIGHT } else { 1 };
        // `buffered` answers in the order sent, and with 1 in flight submits in that order.
        futures::stream::iter(batch)
            .map(|entry| async move {
                match entry {
                    Ok(draft) => Ok(self.submit(draft).await),
                    Err(refused) => Err(refused),
                }
            })
            .buffered(in_flight)
            .collect()
            .await
    }
}

/// Reports of one batch in the store's queue at once: enough to fill a group commit, few enough
/// that a batch of thousands (a 4 MiB message of small reports) does not fill the queue ahead of
/// every other caller.
const BATCH_IN_FLIGHT: usize = 64;

/// Whether two drafts share a submission id or a report. Compared as sent: a code or a period
/// is accepted only exactly as written, so two spellings never name one report.
fn names_anything_twice<'d>(drafts: impl Iterator<Item = &'d ReportDraft>) -> bool {
    let mut ids = std::collections::HashSet::new();
    let mut reports = std::collections::HashSet::new();
    for draft in drafts {
        let report = (
            draft.unit_code.as_str(),
            draft.data_set.as_str(),
            draft.period.as_str(),
        );
        if !ids.insert(draft.submission_id.as_str()) || !reports.insert(report) {
            return true;
        }
    }
    false
}

/// A client-supplied string for a log line: at most 64 characters (Debug-escaped by the caller).
fn loggable(raw: &str) -> String {
    if raw.chars().count() <= 64 {
        raw.to_owned()
    } else {
        format!("{}…", raw.chars().take(64).collect::<String>())
    }
}

/// True for receipts that wrote something (for counting in the demo and batch summaries).
pub fn wrote(receipt: &Receipt) -> bool {
    receipt.status != ReceiptStatus::Duplicate
}

#[cfg(test)]
mod tests {
    use super::names_anything_twice;
    use crate::domain::ReportDraft;

    fn draft(id: &str, unit: &str, period: &str) -> ReportDraft {
        ReportDraft {
            submission_id: id.into(),
            unit_code: unit.into(),
            data_set: "DVCQ_THANG".into(),
            period: period.into(),
            values: Vec::new(),
            narrative: Default::default(),
            prepared_by: "test".into(),
            client_time: None,
        }
    }

    #[test]
    fn a_batch_goes_together_only_when_no_id_and_no_report_repeats() {
        let a = draft("a", "BS03", "201909");
        let other_unit = draft("b", "BS05", "201909");
        let other_period = draft("c", "BS03", "201910");
        assert!(!names_anything_twice(
            [&a, &other_unit, &other_period].into_iter()
        ));

        let same_id = draft("a", "BS05", "201911");
        assert!(names_anything_twice(
            [&a, &other_unit, &same_id].into_iter()
        ));
        let same_report = draft("d", "BS03", "201909");
        assert!(names_anything_twice(
            [&a, &other_period, &same_report].into_iter()
        ));
        let mut other_data_set = draft("e", "BS03", "201909");
        other_data_set.data_set = "DVCQ_QUY".into();
        assert!(!names_anything_twice([&a, &other_data_set].into_iter()));
    }
}
