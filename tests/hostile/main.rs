//! Hostile input over the real gRPC socket and a real SQLite file: bytes that are not a
//! protobuf message, frames that lie about their length, messages over the size limit,
//! megabyte strings, control characters and look-alike letters, SQL metacharacters and path
//! separators, in every string field a report has.
//!
//! For each input the aggregator must answer with a clear error (the status code asserted, the
//! field named), stay up (it answers a valid report afterwards, on a new connection, and after
//! the last case of a test still stores a new one) and leave the store exactly as it was (same
//! dump, same change counter, same bytes in the SQLite file and its WAL). Free text is the exception that proves the rule: quotes, semicolons and
//! `--` in a narrative are legitimate, so they are accepted and must come back verbatim.
//!
//! `tests/validation_e2e/` breaks each validation rule once; this suite sends what an attacker or a
//! broken client would send, and checks the answers as a whole.

#[path = "../common/mod.rs"]
mod common;

use common::*;
use std::time::{Duration, Instant};
use tonghop::config::Settings;
use tonghop::domain::{DraftValue, ReceiptStatus, ReportDraft, Violation};
use tonghop::grpc::client::SubmitFailure;
use tonic::Code;

/// The unit and period hostile reports claim to be for (a district, a closed month).
const UNIT: &str = "BS02";
const PERIOD: &str = "201909";

/// A whole rejection as the client sees it (message and every listed violation) stays under
/// this, whatever the size of the input: nothing is echoed back in full.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// Time allowed for one call; a server that hangs fails the test instead of stalling it.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Time allowed for one test function's cases as a whole.
const TEST_BUDGET: Duration = Duration::from_secs(120);

/// One megabyte, the size of the strings sent in every field.
const MEGABYTE: usize = 1_000_000;

// ------------------------------------------------------------------------------------------
// The target: an aggregator, the state its store must stay in, and the checks after each case
// ------------------------------------------------------------------------------------------

fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("  {} [{}] {}", v.field, v.rule, shown(&v.description)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A string cut for a failure message (a failing case must not print a megabyte either).
fn shown(text: &str) -> String {
    if text.len() <= 300 {
        return format!("{text:?}");
    }
    let head: String = text.chars().take(200).collect();
    format!("{head:?}... ({} bytes)", text.len())
}

/// Bytes of a rejection as the client receives it.
fn answer_bytes(failure: &SubmitFailure) -> usize {
    failure.message.len()
        + failure
            .violations
            .iter()
            .map(|v| v.field.len() + v.rule.len() + v.description.len())
            .sum::<usize>()
}

/// The report every target stores first, and sends again as a liveness probe.
const SEED_ID: &str = "seed:BS01:201909";

fn seed_report() -> ReportDraft {
    valid_report(SEED_ID, "BS01", PERIOD)
}

/// An aggregator under attack. Every problem found is collected, so one run reports all the
/// cases that fail, not only the first.
struct Target {
    app: TestApp,
    state: StoreState,
    problems: Vec<String>,
    started: Instant,
}

impl Target {
    async fn start() -> Target {
        Target::on(spawn_app(Backend::Sqlite).await).await
    }

    /// Stores one valid report first, so comparisons are made on a store that is not empty.
    async fn on(app: TestApp) -> Target {
        let mut client = app.client().await;
        let receipt = client
            .submit(&seed_report())
            .await
            .expect("the seed report is valid and accepted");
        assert_eq!(receipt.status, ReceiptStatus::New);
        let state = store_state(&app).await;
        assert_eq!(state.change_counter, 1);
        Target {
            app,
            state,
            problems: Vec::new(),
            started: Instant::now(),
        }
    }

    fn problem(&mut self, case: &str, what: impl std::fmt::Display) {
        self.problems.push(format!("{case}: {what}"));
    }

    /// Stops a test that runs far longer than it should (a slow server, not a slow machine).
    fn within_budget(&self, case: &str) {
        assert!(
            self.started.elapsed() < TEST_BUDGET,
            "over the time budget of {TEST_BUDGET:?} at {case}; problems so far:\n{}",
            self.problems.join("\n")
        );
    }

    async fn submit(&mut self, draft: &ReportDraft) -> Result<tonghop::domain::Receipt, String> {
        let mut client = self.app.client().await;
        match tokio::time::timeout(CALL_TIMEOUT, client.submit(draft)).await {
            Err(_) => Err(format!("no answer within {CALL_TIMEOUT:?}")),
            Ok(Ok(receipt)) => Ok(receipt),
            Ok(Err(failure)) => Err(format!("{failure:?}")),
        }
    }

    /// After a hostile input: the store is exactly as it was, and the server still answers a
    /// valid report on a new connection. The probe is the seed report sent again, which the
    /// server must recognise as a duplicate: a full round trip through decoding, validation
    /// and the store that writes nothing, so every case is judged against the same state.
    async fn unchanged_and_alive(&mut self, case: &str) {
        let now = store_state(&self.app).await;
        if now != self.state {
            if now.change_counter != self.state.change_counter {
                let (before, after) = (self.state.change_counter, now.change_counter);
                self.problem(
                    case,
                    format!("change counter moved from {before} to {after}"),
                );
            }
            if now.dump != self.state.dump {
                let after = shown(&now.dump);
                self.problem(case, format!("store dump changed; now:\n{after}"));
            }
            if now.file_digest != self.state.file_digest {
                self.problem(case, "SQLite file bytes changed");
            }
            // Judge the next case on its own.
            self.state = now;
        }
        match self.submit(&seed_report()).await {
            Ok(receipt) if (receipt.status, receipt.revision) == (ReceiptStatus::Duplicate, 1) => {}
            Ok(receipt) => self.problem(case, format!("probe answered as {receipt:?}")),
            Err(e) => self.problem(case, format!("server refuses a valid report after it: {e}")),
        }
        self.within_budget(case);
    }

    /// Sends `draft`, which must be refused as INVALID_ARGUMENT with a violation of `rule` on
    /// `field` whose description mentions each of `mentions`, in an answer of bounded size;
    /// then checks the store and the server.
    async fn refused(
        &mut self,
        case: &str,
        draft: &ReportDraft,
        field: &str,
        rule: &str,
        mentions: &[&str],
    ) {
        let mut client = self.app.client().await;
        match tokio::time::timeout(CALL_TIMEOUT, client.submit(draft)).await {
            Err(_) => self.problem(case, format!("no answer within {CALL_TIMEOUT:?}")),
            Ok(Ok(receipt)) => self.problem(case, format!("accepted: {receipt:?}")),
            Ok(Err(failure)) => {
                for problem in check_refusal(&failure, field, rule, mentions) {
                    self.problem(case, problem);
                }
            }
        }
        self.unchanged_and_alive(case).await;
    }

    /// After all the cases: a new report is still written (every table is still there), and
    /// what was stored before is still in the dump.
    async fn finish(mut self) {
        let before = store_state(&self.app).await;
        let last = valid_report("alive:after-all", "BS01", "201910");
        match self.submit(&last).await {
            Ok(receipt) if receipt.status == ReceiptStatus::New => {}
            Ok(receipt) => self.problem("after all cases", format!("answered {receipt:?}")),
            Err(e) => self.problem("after all cases", format!("a new report is refused: {e}")),
        }
        let after = store_state(&self.app).await;
        if after.change_counter != before.change_counter + 1 {
            let problem = format!("{} revisions after one write", after.change_counter);
            self.problem("after all cases", problem);
        }
        for id in [SEED_ID, "alive:after-all"] {
            if !after.dump.contains(id) {
                self.problem("after all cases", format!("{id} missing from the dump"));
            }
        }
        let Target { app, problems, .. } = self;
        app.stop().await;
        assert!(
            problems.is_empty(),
            "{} problem(s):\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
}

/// Every way `failure` differs from a clear refusal of `rule` on `field`.
fn check_refusal(
    failure: &SubmitFailure,
    field: &str,
    rule: &str,
    mentions: &[&str],
) -> Vec<String> {
    let mut problems = Vec::new();
    if failure.code != Code::InvalidArgument {
        problems.push(format!(
            "code {:?} instead of InvalidArgument: {}",
            failure.code,
            shown(&failure.message)
        ));
        return problems;
    }
    if failure.retryable {
        problems.push("a refused report is marked retryable".into());
    }
    match failure
        .violations
        .iter()
        .find(|v| v.field == field && v.rule == rule)
    {
        None => problems.push(format!(
            "no violation {rule} on {field}; got:\n{}",
            describe(&failure.violations)
        )),
        Some(v) => {
            for mention in mentions {
                if !v.description.contains(mention) {
                    problems.push(format!(
                        "{field} [{rule}] does not mention {mention:?}: {}",
                        shown(&v.description)
                    ));
                }
            }
        }
    }
    let size = answer_bytes(failure);
    if size > MAX_ANSWER_BYTES {
        problems.push(format!(
            "the refusal is {size} bytes (over {MAX_ANSWER_BYTES}): the input is echoed back"
        ));
    }
    problems
}

/// The valid report every case starts from, under its own submission id.
fn base(n: usize) -> ReportDraft {
    valid_report(&format!("hostile:{n}"), UNIT, PERIOD)
}

/// Where a string can go in a report, and what the validator calls that place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    SubmissionId,
    UnitCode,
    DataSet,
    Period,
    /// The indicator of the first value.
    Indicator,
    Results,
    Shortcomings,
    Proposals,
    PreparedBy,
    /// The comment of the first value.
    Comment,
}

const CODE_SLOTS: [Slot; 5] = [
    Slot::SubmissionId,
    Slot::UnitCode,
    Slot::DataSet,
    Slot::Period,
    Slot::Indicator,
];

const TEXT_SLOTS: [Slot; 5] = [
    Slot::Results,
    Slot::Shortcomings,
    Slot::Proposals,
    Slot::PreparedBy,
    Slot::Comment,
];

impl Slot {
    fn field(self) -> &'static str {
        match self {
            Slot::SubmissionId => "submission_id",
            Slot::UnitCode => "unit_code",
            Slot::DataSet => "data_set",
            Slot::Period => "period",
            Slot::Indicator => "values[0].indicator",
            Slot::Results => "narrative.results",
            Slot::Shortcomings => "narrative.shortcomings",
            Slot::Proposals => "narrative.proposals",
            Slot::PreparedBy => "prepared_by",
            Slot::Comment => "values[0].comment",
        }
    }

    /// The rule a code that does not even parse breaks.
    fn malformed_rule(self) -> &'static str {
        match self {
            Slot::Period => "period_malformed",
            _ => "invalid_code",
        }
    }

    /// The valid value the slot holds in `base`.
    fn legit(self) -> &'static str {
        match self {
            Slot::SubmissionId => "hostile:BS02:201909",
            Slot::UnitCode => UNIT,
            Slot::DataSet => "DVCQ_THANG",
            Slot::Period => PERIOD,
            Slot::Indicator => "tiep_cong_dan",
            Slot::Results => "Tổ chức 02 buổi tiếp công dân định kỳ.",
            Slot::Shortcomings => "Một số hồ sơ còn trễ hạn.",
            Slot::Proposals => "Đề nghị tăng cường tập huấn.",
            Slot::PreparedBy => "Nguyễn Văn An",
            Slot::Comment => "Số liệu đã đối chiếu.",
        }
    }

    fn set(self, draft: &mut ReportDraft, value: String) {
        match self {
            Slot::SubmissionId => draft.submission_id = value,
            Slot::UnitCode => draft.unit_code = value,
            Slot::DataSet => draft.data_set = value,
            Slot::Period => draft.period = value,
            Slot::Indicator => draft.values[0].indicator = value,
            Slot::Results => draft.narrative.results = value,
            Slot::Shortcomings => draft.narrative.shortcomings = value,
            Slot::Proposals => draft.narrative.proposals = value,
            Slot::PreparedBy => draft.prepared_by = value,
            Slot::Comment => draft.values[0].comment = value,
        }
    }

    fn draft(self, n: usize, value: String) -> ReportDraft {
        let mut draft = base(n);
        assert_eq!(draft.values[0].indicator, "tiep_cong_dan");
        self.set(&mut draft, value);
        draft
    }
}

mod characters;
mod config;
mod log;
mod raw;
mod size;
mod sql_and_paths;
mod wire;
