//! Report files as district staff write them: TOML or JSON, with values either as a table
//! (`indicator = value`) or a list of `{ indicator, value, comment }`. Without a
//! `submission_id` one is derived from the content, so sending the same file twice is a
//! duplicate and an edited file is a new revision.

use crate::domain::{FileValues, Narrative, ReportDraft};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ReportFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid TOML report: {source}")]
    Toml {
        path: String,
        source: toml::de::Error,
    },
    #[error("{path} is not a valid JSON report: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: unknown file type; use .toml or .json")]
    UnknownType { path: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportFile {
    submission_id: Option<String>,
    unit_code: String,
    data_set: String,
    period: String,
    #[serde(default)]
    prepared_by: String,
    client_time: Option<DateTime<Utc>>,
    values: FileValues,
    #[serde(default)]
    narrative: Narrative,
}

pub fn read_report_file(path: &Path) -> Result<ReportDraft, ReportFileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ReportFileError::Read {
        path: shown.clone(),
        source,
    })?;
    let file: ReportFile = match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("toml") => {
            toml::from_str(&text).map_err(|source| ReportFileError::Toml {
                path: shown.clone(),
                source,
            })?
        }
        Some(e) if e.eq_ignore_ascii_case("json") => {
            serde_json::from_str(&text).map_err(|source| ReportFileError::Json {
                path: shown.clone(),
                source,
            })?
        }
        _ => return Err(ReportFileError::UnknownType { path: shown }),
    };
    let values = file.values.into_drafts();
    let mut draft = ReportDraft {
        submission_id: String::new(),
        unit_code: file.unit_code,
        data_set: file.data_set,
        period: file.period,
        values,
        narrative: file.narrative,
        prepared_by: file.prepared_by,
        client_time: Some(file.client_time.unwrap_or_else(Utc::now)),
    };
    draft.submission_id = file
        .submission_id
        .unwrap_or_else(|| derived_submission_id(&draft));
    Ok(draft)
}

/// `UNIT-DATASET-PERIOD-<first 16 hex digits of SHA-256 over the content>`.
pub fn derived_submission_id(draft: &ReportDraft) -> String {
    let mut values: Vec<(&str, f64, &str)> = draft
        .values
        .iter()
        .map(|v| (v.indicator.as_str(), v.value, v.comment.as_str()))
        .collect();
    values.sort_by(|a, b| a.0.cmp(b.0));
    let canonical = serde_json::json!({
        "unit": draft.unit_code,
        "data_set": draft.data_set,
        "period": draft.period,
        "values": values,
        "narrative": draft.narrative,
        "prepared_by": draft.prepared_by,
    });
    let digest = hex::encode(Sha256::digest(canonical.to_string().as_bytes()));
    format!(
        "{}-{}-{}-{}",
        draft.unit_code,
        draft.data_set,
        draft.period,
        &digest[..16]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_files_parse_and_ids_follow_content() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/binh-son");
        let toml = read_report_file(&root.join("report-BS03-201909.toml")).expect("toml parses");
        assert_eq!(toml.unit_code, "BS03");
        assert_eq!(toml.values.len(), 14);
        assert!(toml.submission_id.starts_with("BS03-DVCQ_THANG-201909-"));
        let again = read_report_file(&root.join("report-BS03-201909.toml")).expect("parses");
        assert_eq!(
            toml.submission_id, again.submission_id,
            "same content, same id"
        );
        let mut edited = toml.clone();
        edited.values[0].value += 1.0;
        assert_ne!(derived_submission_id(&edited), toml.submission_id);

        let json = read_report_file(&root.join("report-BS03-201909.json")).expect("json parses");
        assert_eq!(json.submission_id, "BS03-DVCQ_THANG-201909-a");
        assert_eq!(json.values[7].comment, "97% đúng hạn");
    }
}
