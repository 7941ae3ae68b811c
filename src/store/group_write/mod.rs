//! Writing a group of reports in one transaction: one commit, and a few statements for the
//! whole group instead of five or six round trips per report. At thousands of reports a second
//! those round trips, not the disk, are what hold ingest back.
//!
//! What each report of a group becomes is decided once, here, for both backends, and it is
//! exactly what writing the reports one after another in queue order would give: a submission
//! id seen before (in the store, or earlier in the group) is recognised as a duplicate or a
//! conflict; each new revision takes the next number of its report. Each backend's SQL sits in
//! a file of its own: PostgreSQL's set-based statements over the network, SQLite's prepared
//! one-row statements stepped in the writer's own thread.

mod postgres;
mod sqlite;

pub(super) use postgres::write_group as write_group_postgres;
pub(super) use sqlite::{commit_group as commit_group_sqlite, on_handle};

use super::queries::{self as q, RevisionRow};
use super::{NewRevision, Recorded, StoreError};
use std::collections::{HashMap, HashSet};

/// A report's identity: (unit, data set, period).
type ReportKey = (String, String, String);

/// A revision the group will insert, with the numbers it was given.
struct Planned<'g> {
    new: &'g NewRevision,
    /// SQLite's group write numbers seqs itself; PostgreSQL's fills them in from its sequence.
    seq: i64,
    revision: u32,
    period: String,
    warnings: String,
}

/// The group decided: what to insert, and what to answer once it is committed.
struct GroupPlan<'g> {
    /// The new revisions, in queue order.
    planned: Vec<Planned<'g>>,
    /// One answer per report of the group, in queue order.
    outcomes: Vec<Recorded>,
}

fn report_key(new: &NewRevision, period: &str) -> ReportKey {
    (
        new.report.unit.as_str().to_owned(),
        new.report.data_set.as_str().to_owned(),
        period.to_owned(),
    )
}

/// How many new revisions the group brings to each report it touches: what PostgreSQL reserves
/// revision numbers for before it plans. A report is new when its submission id is neither
/// `known` (stored before) nor earlier in the group: the rule `plan` applies.
fn new_revisions_per_report(
    group: &[&NewRevision],
    known: &HashMap<String, RevisionRow>,
) -> HashMap<ReportKey, u32> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut counts = HashMap::new();
    for new in group {
        let id = new.report.submission_id.as_str();
        if known.contains_key(id) || !seen.insert(id) {
            continue;
        }
        *counts
            .entry(report_key(new, &new.report.period.to_string()))
            .or_insert(0) += 1;
    }
    counts
}

/// Decides every report of `group` in queue order. `known` holds the rows already stored under
/// the group's submission ids; `latest` the latest stored revision of each report the group
/// touches (absent: none yet); new revisions get seqs counting up from `first_seq`.
fn plan<'g>(
    group: &[&'g NewRevision],
    known: &HashMap<String, RevisionRow>,
    mut latest: HashMap<ReportKey, u32>,
    first_seq: i64,
) -> Result<GroupPlan<'g>, StoreError> {
    let mut planned: Vec<Planned<'g>> = Vec::new();
    // Submission id → index in `planned`, for repeats within the group.
    let mut in_group: HashMap<&str, usize> = HashMap::new();
    let mut outcomes = Vec::with_capacity(group.len());
    let mut next_seq = first_seq;
    for new in group {
        let id = new.report.submission_id.as_str();
        if let Some(row) = known.get(id) {
            outcomes.push(row.clone().recognise(&new.content_hash)?);
            continue;
        }
        if let Some(&earlier) = in_group.get(id) {
            outcomes.push(recognise_planned(&planned[earlier], &new.content_hash));
            continue;
        }
        let period = new.report.period.to_string();
        let revision = latest.entry(report_key(new, &period)).or_insert(0);
        *revision += 1;
        let revision = *revision;
        let warnings = serde_json::to_string(&new.warnings)
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        outcomes.push(Recorded::Stored(q::stored_receipt(new, revision)));
        in_group.insert(id, planned.len());
        planned.push(Planned {
            new,
            seq: next_seq,
            revision,
            period,
            warnings,
        });
        next_seq += 1;
    }
    Ok(GroupPlan { planned, outcomes })
}

/// What an earlier report of this same group means for a repeat of its submission id: the
/// same rule as `RevisionRow::recognise`, applied to a row not yet written.
fn recognise_planned(earlier: &Planned<'_>, content_hash: &str) -> Recorded {
    if earlier.new.content_hash != content_hash {
        return Recorded::Conflict {
            existing_hash: earlier.new.content_hash.clone(),
            existing_revision: earlier.revision,
        };
    }
    let mut receipt = q::stored_receipt(earlier.new, earlier.revision);
    receipt.status = crate::domain::ReceiptStatus::Duplicate;
    Recorded::Duplicate(receipt)
}

/// The last new revision of each report the group touches: where its `current_reports` row
/// must point once the group is written.
fn last_per_report<'p, 'g>(planned: &'p [Planned<'g>]) -> Vec<&'p Planned<'g>> {
    let mut last: HashMap<(&str, &str, &str), &'p Planned<'g>> = HashMap::new();
    for p in planned {
        let report = &p.new.report;
        last.insert(
            (
                report.unit.as_str(),
                report.data_set.as_str(),
                p.period.as_str(),
            ),
            p,
        );
    }
    last.into_values().collect()
}

#[cfg(test)]
pub(in crate::store) mod tests {
    use super::*;
    use crate::domain::{DataSetCode, DateWindow, Narrative, PeriodId, Report, SubmissionId};
    use crate::domain::{ReceiptStatus, UnitCode};
    use chrono::{NaiveDate, TimeZone, Utc};

    /// A report with no values, for tests of how groups are decided and committed.
    pub(in crate::store) fn new_revision(id: &str, unit: &str, hash: &str) -> NewRevision {
        let day = |d| NaiveDate::from_ymd_opt(2026, 1, d).unwrap_or_default();
        NewRevision {
            report: Report {
                submission_id: SubmissionId::parse(id).expect("test id"),
                unit: UnitCode::parse(unit).expect("test unit"),
                data_set: DataSetCode::parse("MONTHLY").expect("test data set"),
                period: PeriodId::parse("202601").expect("test period"),
                values: Vec::new(),
                narrative: Narrative::default(),
                prepared_by: "test".into(),
                client_time: None,
            },
            content_hash: hash.into(),
            received_at: Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap(),
            deadline: Utc.with_ymd_and_hms(2026, 2, 5, 0, 0, 0).unwrap(),
            on_time: true,
            window: DateWindow {
                start: day(1),
                end: day(31),
            },
            warnings: Vec::new(),
        }
    }

    #[test]
    fn a_group_is_decided_as_if_written_one_by_one() {
        let a1 = new_revision("sub-a1", "D01", "h1");
        let a2 = new_revision("sub-a2", "D01", "h2");
        let again = new_revision("sub-a1", "D01", "h1");
        let clash = new_revision("sub-a2", "D01", "other");
        let b1 = new_revision("sub-b1", "D02", "h3");
        let group = [&a1, &a2, &again, &clash, &b1];
        // D01 already has revision 4 stored; D02 has none.
        let latest = HashMap::from([(report_key(&a1, &a1.report.period.to_string()), 4)]);
        let plan = plan(&group, &HashMap::new(), latest, 100).expect("plan");

        // Three new revisions, seqs 100, 101, 102 in queue order; D01 goes on 5, 6; D02 1.
        let numbers: Vec<(i64, u32)> = plan.planned.iter().map(|p| (p.seq, p.revision)).collect();
        assert_eq!(numbers, [(100, 5), (101, 6), (102, 1)]);
        let statuses: Vec<String> = plan
            .outcomes
            .iter()
            .map(|o| match o {
                Recorded::Stored(r) | Recorded::Duplicate(r) => {
                    format!("{:?} {}", r.status, r.revision)
                }
                Recorded::Conflict {
                    existing_revision, ..
                } => format!("conflict {existing_revision}"),
            })
            .collect();
        assert_eq!(
            statuses,
            [
                format!("{:?} 5", ReceiptStatus::Revision),
                format!("{:?} 6", ReceiptStatus::Revision),
                format!("{:?} 5", ReceiptStatus::Duplicate),
                "conflict 6".to_owned(),
                format!("{:?} 1", ReceiptStatus::New),
            ]
        );
        // The counts PostgreSQL reserves agree: two for D01, one for D02, none for repeats.
        let counts = new_revisions_per_report(&group, &HashMap::new());
        assert_eq!(
            counts.get(&report_key(&a1, &a1.report.period.to_string())),
            Some(&2)
        );
        assert_eq!(
            counts.get(&report_key(&b1, &b1.report.period.to_string())),
            Some(&1)
        );
        assert_eq!(counts.len(), 2);
        // current_reports ends on the last revision of each report.
        let mut last: Vec<i64> = last_per_report(&plan.planned)
            .iter()
            .map(|p| p.seq)
            .collect();
        last.sort_unstable();
        assert_eq!(last, [101, 102]);
    }
}
