//! A report as it arrives (`ReportDraft`: whatever the client sent) and as the rest of the
//! system sees it (`Report`: checked against the catalog and the unit tree), plus the receipt
//! the aggregator answers with.

use super::codes::{DataSetCode, IndicatorCode, SubmissionId, UnitCode};
use super::period::{DateWindow, PeriodId};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// Text sections of a Vietnamese report: results, shortcomings, proposals.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Narrative {
    /// Kết quả đạt được.
    pub results: String,
    /// Tồn tại, hạn chế.
    pub shortcomings: String,
    /// Kiến nghị, đề xuất.
    pub proposals: String,
}

/// One value as received.
#[derive(Debug, Clone, PartialEq)]
pub struct DraftValue {
    pub indicator: String,
    pub value: f64,
    pub comment: String,
}

/// The values of a report file (`tonghop submit` and the agent's folder source read the same
/// format): a table `indicator = value`, or a list of `{ indicator, value, comment }`.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
pub enum FileValues {
    Table(std::collections::BTreeMap<String, f64>),
    List(Vec<ListedValue>),
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListedValue {
    indicator: String,
    value: f64,
    #[serde(default)]
    comment: String,
}

impl FileValues {
    pub fn into_drafts(self) -> Vec<DraftValue> {
        match self {
            FileValues::Table(table) => table
                .into_iter()
                .map(|(indicator, value)| DraftValue {
                    indicator,
                    value,
                    comment: String::new(),
                })
                .collect(),
            FileValues::List(list) => list
                .into_iter()
                .map(|v| DraftValue {
                    indicator: v.indicator,
                    value: v.value,
                    comment: v.comment,
                })
                .collect(),
        }
    }
}

/// A report as received from a client, before any check.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportDraft {
    pub submission_id: String,
    pub unit_code: String,
    pub data_set: String,
    pub period: String,
    pub values: Vec<DraftValue>,
    pub narrative: Narrative,
    pub prepared_by: String,
    pub client_time: Option<DateTime<Utc>>,
}

/// One checked value.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DataValue {
    pub indicator: IndicatorCode,
    pub value: f64,
    pub comment: Option<String>,
}

/// A report that passed every check. Values are sorted by indicator code, so two reports with
/// the same content are equal whatever order the client sent them in.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub submission_id: SubmissionId,
    pub unit: UnitCode,
    pub data_set: DataSetCode,
    pub period: PeriodId,
    pub values: Vec<DataValue>,
    pub narrative: Narrative,
    pub prepared_by: String,
    pub client_time: Option<DateTime<Utc>>,
}

impl Report {
    /// SHA-256 over what the report says: unit, data set, period, values, narrative and author.
    /// The submission id and the client's timestamp are left out: a client that retries with a
    /// fresh timestamp is still sending the same report.
    pub fn content_hash(&self) -> String {
        #[derive(serde::Serialize)]
        struct Canonical<'a> {
            unit: &'a str,
            data_set: &'a str,
            period: String,
            values: &'a [DataValue],
            narrative: &'a Narrative,
            prepared_by: &'a str,
        }
        let canonical = Canonical {
            unit: self.unit.as_str(),
            data_set: self.data_set.as_str(),
            period: self.period.to_string(),
            values: &self.values,
            narrative: &self.narrative,
            prepared_by: &self.prepared_by,
        };
        // Serialising plain strings and finite floats cannot fail.
        let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }

    pub fn value(&self, indicator: &str) -> Option<f64> {
        self.values
            .iter()
            .find(|v| v.indicator.as_str() == indicator)
            .map(|v| v.value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptStatus {
    /// First revision of this unit, data set and period.
    New,
    /// A later revision, which analytics read from now on.
    Revision,
    /// This submission id was stored before with the same content; nothing was written.
    Duplicate,
}

impl ReceiptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptStatus::New => "new",
            ReceiptStatus::Revision => "revision",
            ReceiptStatus::Duplicate => "duplicate",
        }
    }
}

/// What the aggregator answers once a report is committed.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub submission_id: SubmissionId,
    pub revision: u32,
    pub status: ReceiptStatus,
    pub received_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub on_time: bool,
    pub warnings: Vec<String>,
    pub window: DateWindow,
}
