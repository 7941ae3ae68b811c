//! Where a district's numbers come from: report files that staff or another system drop into a
//! folder (TOML, JSON, or CSV `indicator,value` rows), or a query against the district's own
//! database (`sql_source`). Both yield the same `SourceReport`; the agent turns it into a
//! report draft and lets the content hash decide whether anything changed.

use super::settings::SourceSettings;
use super::sql_source::SqlSource;
use crate::domain::{DateWindow, DraftValue, FileValues, Narrative, PeriodId};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The content of one period's report as a source gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceReport {
    pub values: Vec<DraftValue>,
    pub narrative: Narrative,
    /// The author named by the source, if any.
    pub prepared_by: Option<String>,
    /// For operators: the file, or the database the query ran against.
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    File(String),
    #[error("{0}")]
    Sql(String),
}

/// What the agent knows about the report it reads: checked against what a file says about
/// itself.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    pub unit: &'a str,
    pub data_set: &'a str,
    pub period: PeriodId,
    pub window: DateWindow,
}

pub enum Source {
    Folder(FolderSource),
    Sql(SqlSource),
}

impl Source {
    pub fn new(settings: &SourceSettings) -> Self {
        match settings {
            SourceSettings::Folder { path, settle } => Source::Folder(FolderSource {
                path: path.clone(),
                settle: *settle,
            }),
            SourceSettings::Sql { url, query } => Source::Sql(SqlSource::new(url, query)),
        }
    }

    /// Where reports come from, for logs and `agent status`.
    pub fn describe(&self) -> String {
        match self {
            Source::Folder(f) => format!("folder {}", f.path.display()),
            Source::Sql(s) => s.describe(),
        }
    }

    /// Reads the reports of `periods` (oldest first). `Ok(None)`: no data for that period yet.
    pub async fn read_all(
        &mut self,
        expects: &[Expect<'_>],
    ) -> Vec<Result<Option<SourceReport>, SourceError>> {
        match self {
            Source::Folder(f) => f.read_all(expects),
            Source::Sql(s) => {
                let mut out = Vec::with_capacity(expects.len());
                for e in expects {
                    out.push(s.read(e.period, e.window).await);
                }
                out
            }
        }
    }

    pub async fn close(&mut self) {
        if let Source::Sql(s) = self {
            s.close().await;
        }
    }
}

pub struct FolderSource {
    path: PathBuf,
    settle: Duration,
}

const EXTENSIONS: [&str; 3] = ["toml", "json", "csv"];

impl FolderSource {
    /// Files named `DATASET-PERIOD.ext` (extension in any case), by period identifier.
    fn listing(&self, data_set: &str) -> Result<HashMap<String, Vec<PathBuf>>, SourceError> {
        let entries = std::fs::read_dir(&self.path).map_err(|e| {
            SourceError::File(format!(
                "cannot list report folder {}: {e}",
                self.path.display()
            ))
        })?;
        let prefix = format!("{data_set}-");
        let mut out: HashMap<String, Vec<PathBuf>> = HashMap::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some((stem, ext)) = name.rsplit_once('.') else {
                continue;
            };
            if !EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext)) {
                continue;
            }
            if let Some(period) = stem.strip_prefix(&prefix) {
                out.entry(period.to_owned()).or_default().push(path);
            }
        }
        Ok(out)
    }

    fn read_all(&self, expects: &[Expect<'_>]) -> Vec<Result<Option<SourceReport>, SourceError>> {
        let Some(first) = expects.first() else {
            return Vec::new();
        };
        let listing = match self.listing(first.data_set) {
            Ok(l) => l,
            Err(e) => return expects.iter().map(|_| Err(e.clone())).collect(),
        };
        expects
            .iter()
            .map(
                |e| match listing.get(&e.period.to_string()).map(Vec::as_slice) {
                    None | Some([]) => Ok(None),
                    Some([path]) => self.read_settled(path, e),
                    Some(paths) => {
                        let names: Vec<String> =
                            paths.iter().map(|p| p.display().to_string()).collect();
                        Err(SourceError::File(format!(
                            "{} files for {} {}: {}; keep one",
                            paths.len(),
                            e.data_set,
                            e.period,
                            names.join(", ")
                        )))
                    }
                },
            )
            .collect()
    }

    fn read_settled(
        &self,
        path: &Path,
        expect: &Expect<'_>,
    ) -> Result<Option<SourceReport>, SourceError> {
        if !self.settle.is_zero() {
            let modified = std::fs::metadata(path).and_then(|m| m.modified());
            let age = modified
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok());
            // A file modified in the last seconds may still be being copied in; a half file
            // would go out as a report and then as a correction.
            if age.is_none_or(|age| age < self.settle) {
                tracing::debug!(file = %path.display(), "file changed just now; read next pass");
                return Ok(None);
            }
        }
        read_report(path, expect).map(Some)
    }
}

/// The report file format of `tonghop submit`, with the identifying fields optional: the file
/// name and the agent's settings already say them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportFile {
    /// Accepted so `tonghop submit` files can be dropped in as they are; the agent picks its
    /// own ids (one per content, fixed in the outbox).
    #[serde(default, rename = "submission_id")]
    _submission_id: Option<String>,
    #[serde(default, rename = "client_time")]
    _client_time: Option<String>,
    unit_code: Option<String>,
    data_set: Option<String>,
    period: Option<String>,
    prepared_by: Option<String>,
    values: FileValues,
    #[serde(default)]
    narrative: Narrative,
}

/// Reads one report file (`.toml`, `.json` or `.csv`, by extension).
pub fn read_report(path: &Path, expect: &Expect<'_>) -> Result<SourceReport, SourceError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path)
        .map_err(|e| SourceError::File(format!("cannot read report file {shown}: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| SourceError::File(format!("{shown} is not UTF-8 text: {e}")))?;
    // Spreadsheet programs on Windows start their CSV and text files with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let file: ReportFile = match ext.as_str() {
        "csv" => {
            return Ok(SourceReport {
                values: parse_csv(&shown, text)?,
                narrative: Narrative::default(),
                prepared_by: None,
                origin: shown,
            });
        }
        "toml" => toml::from_str(text)
            .map_err(|e| SourceError::File(format!("{shown} is not a valid TOML report: {e}")))?,
        "json" => serde_json::from_str(text)
            .map_err(|e| SourceError::File(format!("{shown} is not a valid JSON report: {e}")))?,
        _ => {
            return Err(SourceError::File(format!(
                "{shown}: unknown file type; use .toml, .json or .csv"
            )));
        }
    };
    let period = expect.period.to_string();
    for (field, said, expected) in [
        ("unit_code", &file.unit_code, expect.unit),
        ("data_set", &file.data_set, expect.data_set),
        ("period", &file.period, period.as_str()),
    ] {
        if let Some(said) = said
            && said != expected
        {
            return Err(SourceError::File(format!(
                "{shown}: {field} is {said:?} but this file is read as {expected:?} (from the \
                 agent settings and the file name); fix the field or rename the file"
            )));
        }
    }
    let values: Vec<DraftValue> = file.values.into_drafts();
    check_values(&shown, &values)?;
    Ok(SourceReport {
        values,
        narrative: file.narrative,
        prepared_by: file.prepared_by,
        origin: shown,
    })
}

/// Finite numbers, each indicator once: what the aggregator would refuse anyway, caught here
/// with the file's own words.
fn check_values(shown: &str, values: &[DraftValue]) -> Result<(), SourceError> {
    let mut seen = HashMap::new();
    for (i, v) in values.iter().enumerate() {
        if !v.value.is_finite() {
            return Err(SourceError::File(format!(
                "{shown}: value of {} is {}, not a number",
                v.indicator, v.value
            )));
        }
        if let Some(first) = seen.insert(v.indicator.as_str(), i) {
            return Err(SourceError::File(format!(
                "{shown}: indicator {} is given twice (entries {} and {})",
                v.indicator,
                first + 1,
                i + 1
            )));
        }
    }
    Ok(())
}

/// `indicator,value[,comment]` rows; an optional header row starting with `indicator`; lines
/// starting with `#` are comments.
fn parse_csv(shown: &str, text: &str) -> Result<Vec<DraftValue>, SourceError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut values = Vec::new();
    let mut rows_of: HashMap<String, u64> = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| SourceError::File(format!("{shown}: {e}")))?;
        let row = record.position().map_or(i as u64 + 1, |p| p.line());
        let cell = |n: usize| record.get(n).unwrap_or_default();
        if record.iter().all(str::is_empty) {
            continue;
        }
        if i == 0 && cell(0).eq_ignore_ascii_case("indicator") {
            continue;
        }
        if !(2..=3).contains(&record.len()) {
            return Err(SourceError::File(format!(
                "{shown} row {row}: {} columns; expected indicator,value (and an optional \
                 comment)",
                record.len()
            )));
        }
        let indicator = cell(0);
        if indicator.is_empty() {
            return Err(SourceError::File(format!(
                "{shown} row {row}: the indicator column is empty"
            )));
        }
        let raw = cell(1);
        let value: f64 = raw.parse().ok().filter(|v: &f64| v.is_finite()).ok_or_else(|| {
            SourceError::File(format!(
                "{shown} row {row}: value {raw:?} of indicator {indicator} is not a number (write \
                 2634 or 32000.5, without thousands separators)"
            ))
        })?;
        if let Some(first) = rows_of.insert(indicator.to_owned(), row) {
            return Err(SourceError::File(format!(
                "{shown} row {row}: indicator {indicator} was already given on row {first}"
            )));
        }
        values.push(DraftValue {
            indicator: indicator.to_owned(),
            value,
            comment: cell(2).to_owned(),
        });
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Calendar;

    fn expect(period: &str) -> Expect<'static> {
        let period = PeriodId::parse(period).expect("period");
        Expect {
            unit: "BS03",
            data_set: "DVCQ_THANG",
            period,
            window: period.window(Calendar::Decree09),
        }
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn csv_with_and_without_header_and_errors_name_the_row() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = expect("201909");
        let with = write(
            dir.path(),
            "a.csv",
            "\u{feff}indicator,value,comment\n# from the one-stop shop\ntiep_cong_dan,2\n\
             hs_tiep_nhan, 2634 ,over target\n",
        );
        let r = read_report(&with, &e).expect("reads");
        assert_eq!(r.values.len(), 2);
        assert_eq!(r.values[1].value, 2634.0);
        assert_eq!(r.values[1].comment, "over target");
        let without = write(dir.path(), "b.csv", "tiep_cong_dan,2\n");
        assert_eq!(read_report(&without, &e).expect("reads").values.len(), 1);

        let bad = write(
            dir.path(),
            "c.csv",
            "tiep_cong_dan,2\nhs_tiep_nhan,2.634,5\n",
        );
        let ok = read_report(&bad, &e).expect("2.634 is a decimal number");
        assert_eq!(ok.values[1].value, 2.634);
        let bad = write(dir.path(), "d.csv", "tiep_cong_dan,2\nhs_tiep_nhan,hai\n");
        let err = read_report(&bad, &e).expect_err("not a number").to_string();
        assert!(err.contains("row 2") && err.contains("\"hai\""), "{err}");
        let bad = write(dir.path(), "e.csv", "tiep_cong_dan,2\ntiep_cong_dan,3\n");
        let err = read_report(&bad, &e).expect_err("twice").to_string();
        assert!(err.contains("already given on row 1"), "{err}");
    }

    #[test]
    fn toml_and_json_files_may_omit_what_the_name_says_but_not_contradict_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = expect("201909");
        let toml = write(
            dir.path(),
            "a.toml",
            "prepared_by = \"An\"\n[values]\ntiep_cong_dan = 2\n[narrative]\nresults = \"Tốt\"\n",
        );
        let r = read_report(&toml, &e).expect("reads");
        assert_eq!(r.prepared_by.as_deref(), Some("An"));
        assert_eq!(r.narrative.results, "Tốt");
        let json = write(
            dir.path(),
            "a.json",
            r#"{"unit_code":"BS03","values":[{"indicator":"tiep_cong_dan","value":2}]}"#,
        );
        assert_eq!(read_report(&json, &e).expect("reads").values.len(), 1);
        let other = write(
            dir.path(),
            "b.toml",
            "period = \"201908\"\n[values]\ntiep_cong_dan = 2\n",
        );
        let err = read_report(&other, &e)
            .expect_err("contradiction")
            .to_string();
        assert!(err.contains("period is \"201908\""), "{err}");
    }

    #[test]
    fn folder_finds_files_by_name_and_refuses_two_for_one_period() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "DVCQ_THANG-201909.CSV", "tiep_cong_dan,2\n");
        write(dir.path(), "DVCQ_THANG-201908.csv", "tiep_cong_dan,1\n");
        write(
            dir.path(),
            "DVCQ_THANG-201908.toml",
            "[values]\ntiep_cong_dan = 1\n",
        );
        write(dir.path(), "notes.txt", "ignored");
        let folder = FolderSource {
            path: dir.path().to_owned(),
            settle: Duration::ZERO,
        };
        let got = folder.read_all(&[expect("201907"), expect("201908"), expect("201909")]);
        assert_eq!(got[0], Ok(None));
        assert!(matches!(&got[1], Err(SourceError::File(m)) if m.contains("keep one")));
        assert!(matches!(&got[2], Ok(Some(r)) if r.values.len() == 1));

        let settling = FolderSource {
            path: dir.path().to_owned(),
            settle: Duration::from_secs(3600),
        };
        assert_eq!(settling.read_all(&[expect("201909")]), vec![Ok(None)]);
    }
}
