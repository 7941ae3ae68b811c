//! Settings of the district agent, layered like the aggregator's (`crate::config`): built-in
//! defaults < settings file < `TONGHOP_AGENT_*` environment variables < command-line flags.
//! The report list (`[[reports]]`) comes from the file only: it is too structured for a
//! variable, and a district keeps it under version control with the rest of its set-up.

use crate::domain::PeriodId;
use crate::grpc::client::ClientTls;
use chrono::NaiveTime;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:50051";
pub const DEFAULT_OUTBOX: &str = "./data/agent-outbox.db";
pub const DEFAULT_POLL_SECONDS: f64 = 300.0;
pub const DEFAULT_RETRY_INITIAL_SECONDS: f64 = 1.0;
pub const DEFAULT_RETRY_MAX_SECONDS: f64 = 300.0;
pub const DEFAULT_SEND_AFTER_DAYS: u32 = 1;
pub const DEFAULT_SEND_AT: &str = "08:00";
pub const DEFAULT_SETTLE_SECONDS: f64 = 5.0;

/// Where one data set's numbers come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSettings {
    /// Report files dropped into a folder, named `DATASET-PERIOD.toml|json|csv`.
    Folder {
        path: PathBuf,
        /// Files changed more recently than this are left for the next pass (still being
        /// copied in).
        settle: Duration,
    },
    /// A query against the district's database returning `indicator, value` rows; `$1` and
    /// `$2` are the first and last day of the period's data window.
    Sql { url: String, query: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReportSettings {
    pub data_set: String,
    pub first_period: PeriodId,
    pub source: SourceSettings,
    pub send_after_days: u32,
    /// Time of day, Vietnam time (UTC+7).
    pub at: NaiveTime,
}

/// The resolved settings of an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSettings {
    pub endpoint: String,
    /// The reporting unit this agent sends for, e.g. `BS03`.
    pub unit: String,
    pub outbox: PathBuf,
    /// Mutual TLS; `None` is plaintext (a test bench, or a link that is already private).
    pub tls: Option<ClientTls>,
    /// Catalog TOML; `None` is the embedded catalog.
    pub catalog: Option<PathBuf>,
    /// Author written on reports whose source does not name one.
    pub prepared_by: String,
    /// How often sources are read again (new periods, corrections).
    pub poll_interval: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub reports: Vec<ReportSettings>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read agent settings file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("agent settings file {path}: {source}")]
    Parse {
        path: String,
        source: toml::de::Error,
    },
    #[error("environment variable {name}={value:?}: {reason}")]
    Env {
        name: String,
        value: String,
        reason: String,
    },
    #[error("agent settings: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsLayer {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlLayer {
    pub url: String,
    pub query: String,
}

/// One `[[reports]]` entry as written in the file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportLayer {
    pub data_set: String,
    pub first_period: String,
    pub folder: Option<PathBuf>,
    pub settle_seconds: Option<f64>,
    pub sql: Option<SqlLayer>,
    pub send_after_days: Option<u32>,
    pub at: Option<String>,
}

/// One layer: every field optional; the settings file has this shape
/// (`deploy/agent.example.toml`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentLayer {
    pub endpoint: Option<String>,
    pub unit: Option<String>,
    pub outbox: Option<PathBuf>,
    pub catalog: Option<PathBuf>,
    pub prepared_by: Option<String>,
    pub poll_interval_seconds: Option<f64>,
    pub retry_initial_seconds: Option<f64>,
    pub retry_max_seconds: Option<f64>,
    #[serde(default)]
    pub tls: TlsLayer,
    #[serde(default)]
    pub reports: Vec<ReportLayer>,
}

impl AgentLayer {
    pub fn from_file(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| SettingsError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    /// `TONGHOP_AGENT_ENDPOINT`, `_UNIT`, `_OUTBOX`, `_CATALOG`, `_PREPARED_BY`,
    /// `_POLL_INTERVAL_SECONDS`, `_RETRY_INITIAL_SECONDS`, `_RETRY_MAX_SECONDS`, `_TLS_CA`,
    /// `_TLS_CERT`, `_TLS_KEY`, read through `lookup` (the process environment in production).
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let var = |name: &str| lookup(&format!("TONGHOP_AGENT_{name}"));
        let seconds = |name: &str| -> Result<Option<f64>, SettingsError> {
            match var(name) {
                None => Ok(None),
                Some(value) => value
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|e| SettingsError::Env {
                        name: format!("TONGHOP_AGENT_{name}"),
                        value,
                        reason: format!("{e}; expected a number of seconds"),
                    }),
            }
        };
        Ok(AgentLayer {
            endpoint: var("ENDPOINT"),
            unit: var("UNIT"),
            outbox: var("OUTBOX").map(PathBuf::from),
            catalog: var("CATALOG").map(PathBuf::from),
            prepared_by: var("PREPARED_BY"),
            poll_interval_seconds: seconds("POLL_INTERVAL_SECONDS")?,
            retry_initial_seconds: seconds("RETRY_INITIAL_SECONDS")?,
            retry_max_seconds: seconds("RETRY_MAX_SECONDS")?,
            tls: TlsLayer {
                ca: var("TLS_CA").map(PathBuf::from),
                cert: var("TLS_CERT").map(PathBuf::from),
                key: var("TLS_KEY").map(PathBuf::from),
            },
            reports: Vec::new(),
        })
    }

    /// Fields set in `self` win over `below`.
    fn over(self, below: AgentLayer) -> AgentLayer {
        AgentLayer {
            endpoint: self.endpoint.or(below.endpoint),
            unit: self.unit.or(below.unit),
            outbox: self.outbox.or(below.outbox),
            catalog: self.catalog.or(below.catalog),
            prepared_by: self.prepared_by.or(below.prepared_by),
            poll_interval_seconds: self.poll_interval_seconds.or(below.poll_interval_seconds),
            retry_initial_seconds: self.retry_initial_seconds.or(below.retry_initial_seconds),
            retry_max_seconds: self.retry_max_seconds.or(below.retry_max_seconds),
            tls: TlsLayer {
                ca: self.tls.ca.or(below.tls.ca),
                cert: self.tls.cert.or(below.tls.cert),
                key: self.tls.key.or(below.tls.key),
            },
            reports: if self.reports.is_empty() {
                below.reports
            } else {
                self.reports
            },
        }
    }
}

fn duration(name: &str, seconds: f64) -> Result<Duration, SettingsError> {
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero() || name == "settle_seconds")
        .ok_or_else(|| {
            SettingsError::Invalid(format!(
                "{name} = {seconds}: expected a positive number of seconds"
            ))
        })
}

fn report(i: usize, layer: ReportLayer) -> Result<ReportSettings, SettingsError> {
    let at_key = |key: &str| format!("reports[{i}] (data set {}): {key}", layer.data_set);
    let first_period = PeriodId::parse(&layer.first_period).map_err(|e| {
        SettingsError::Invalid(format!(
            "{} {:?} {e}",
            at_key("first_period"),
            layer.first_period
        ))
    })?;
    let at_raw = layer.at.as_deref().unwrap_or(DEFAULT_SEND_AT);
    let at = NaiveTime::parse_from_str(at_raw, "%H:%M").map_err(|_| {
        SettingsError::Invalid(format!(
            "{} {at_raw:?} is not a time of day such as \"08:00\"",
            at_key("at")
        ))
    })?;
    let source = match (layer.folder, layer.sql) {
        (Some(path), None) => SourceSettings::Folder {
            path,
            settle: duration(
                "settle_seconds",
                layer.settle_seconds.unwrap_or(DEFAULT_SETTLE_SECONDS),
            )?,
        },
        (None, Some(sql)) => {
            if layer.settle_seconds.is_some() {
                return Err(SettingsError::Invalid(format!(
                    "{} applies to folder sources only",
                    at_key("settle_seconds")
                )));
            }
            let known = ["sqlite:", "postgres://", "postgresql://"];
            if !known.iter().any(|k| sql.url.starts_with(k)) {
                return Err(SettingsError::Invalid(format!(
                    "{} {:?} is neither sqlite://FILE nor postgres://USER@HOST/DB",
                    at_key("sql.url"),
                    crate::store::redact_url(&sql.url)
                )));
            }
            SourceSettings::Sql {
                url: sql.url,
                query: sql.query,
            }
        }
        _ => {
            return Err(SettingsError::Invalid(format!(
                "{} needs exactly one source: folder = \"...\" or sql = {{ url = \"...\", \
                 query = \"...\" }}",
                at_key("source")
            )));
        }
    };
    Ok(ReportSettings {
        data_set: layer.data_set,
        first_period,
        source,
        send_after_days: layer.send_after_days.unwrap_or(DEFAULT_SEND_AFTER_DAYS),
        at,
    })
}

impl AgentSettings {
    /// defaults < file < env < flags.
    pub fn resolve(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: AgentLayer,
    ) -> Result<AgentSettings, SettingsError> {
        let from_file = match file {
            Some(path) => AgentLayer::from_file(path)?,
            None => AgentLayer::default(),
        };
        let merged = flags.over(AgentLayer::from_env(env)?.over(from_file));
        Self::from_layer(merged)
    }

    pub fn from_layer(layer: AgentLayer) -> Result<AgentSettings, SettingsError> {
        let unit = layer.unit.ok_or_else(|| {
            SettingsError::Invalid(
                "unit is not set: put unit = \"BS03\" (this district's code) in the settings \
                 file, or set TONGHOP_AGENT_UNIT"
                    .into(),
            )
        })?;
        crate::domain::UnitCode::parse(&unit)
            .map_err(|e| SettingsError::Invalid(format!("unit {unit:?} {e}")))?;
        let endpoint = layer.endpoint.unwrap_or_else(|| DEFAULT_ENDPOINT.into());
        let tls = match (layer.tls.ca, layer.tls.cert, layer.tls.key) {
            (None, None, None) => None,
            (Some(ca), Some(cert), Some(key)) => Some(ClientTls { ca, cert, key }),
            (ca, cert, key) => {
                let missing: Vec<&str> = [("ca", ca.is_none()), ("cert", cert.is_none())]
                    .into_iter()
                    .chain([("key", key.is_none())])
                    .filter_map(|(name, absent)| absent.then_some(name))
                    .collect();
                return Err(SettingsError::Invalid(format!(
                    "[tls] needs ca, cert and key together; missing: {}",
                    missing.join(", ")
                )));
            }
        };
        if tls.is_some() && !endpoint.starts_with("https://") {
            return Err(SettingsError::Invalid(format!(
                "endpoint {endpoint:?} is plaintext but [tls] files are set; use \
                 https://HOST:PORT (the host named in the aggregator's certificate)"
            )));
        }
        if layer.reports.is_empty() {
            return Err(SettingsError::Invalid(
                "no [[reports]]: list the data sets this unit sends (see \
                 deploy/agent.example.toml)"
                    .into(),
            ));
        }
        let retry_initial = duration(
            "retry_initial_seconds",
            layer
                .retry_initial_seconds
                .unwrap_or(DEFAULT_RETRY_INITIAL_SECONDS),
        )?;
        let retry_max = duration(
            "retry_max_seconds",
            layer.retry_max_seconds.unwrap_or(DEFAULT_RETRY_MAX_SECONDS),
        )?;
        if retry_max < retry_initial {
            return Err(SettingsError::Invalid(format!(
                "retry_max_seconds ({}) is below retry_initial_seconds ({})",
                retry_max.as_secs_f64(),
                retry_initial.as_secs_f64()
            )));
        }
        let mut reports = Vec::new();
        for (i, r) in layer.reports.into_iter().enumerate() {
            let r = report(i, r)?;
            if reports
                .iter()
                .any(|o: &ReportSettings| o.data_set == r.data_set)
            {
                return Err(SettingsError::Invalid(format!(
                    "data set {} is listed twice in [[reports]]",
                    r.data_set
                )));
            }
            reports.push(r);
        }
        Ok(AgentSettings {
            endpoint,
            unit,
            outbox: layer.outbox.unwrap_or_else(|| DEFAULT_OUTBOX.into()),
            tls,
            catalog: layer.catalog,
            prepared_by: layer.prepared_by.unwrap_or_default(),
            poll_interval: duration(
                "poll_interval_seconds",
                layer.poll_interval_seconds.unwrap_or(DEFAULT_POLL_SECONDS),
            )?,
            retry_initial,
            retry_max,
            reports,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const FILE: &str = r#"
endpoint = "http://file:1"
unit = "BS03"
outbox = "/var/lib/tonghop/outbox.db"

[[reports]]
data_set = "DVCQ_THANG"
first_period = "201901"
folder = "/srv/drop"

[[reports]]
data_set = "DVCQ_NAM"
first_period = "2019"
sql = { url = "postgres://district@db/hethong", query = "SELECT 1" }
send_after_days = 3
at = "14:30"
"#;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    #[test]
    fn each_layer_overrides_the_one_below() {
        let (_dir, path) = write(FILE);
        let env: HashMap<&str, &str> = [
            ("TONGHOP_AGENT_ENDPOINT", "http://env:2"),
            ("TONGHOP_AGENT_OUTBOX", "/env/outbox.db"),
        ]
        .into();
        let flags = AgentLayer {
            outbox: Some("/flag/outbox.db".into()),
            ..AgentLayer::default()
        };
        let s = AgentSettings::resolve(Some(&path), |k| env.get(k).map(|v| v.to_string()), flags)
            .expect("resolves");
        assert_eq!(s.unit, "BS03", "from the file");
        assert_eq!(s.endpoint, "http://env:2", "env beats file");
        assert_eq!(s.outbox, PathBuf::from("/flag/outbox.db"), "flag beats env");
        assert_eq!(s.retry_max, Duration::from_secs(300), "default kept");
        assert_eq!(s.reports.len(), 2);
        assert_eq!(s.reports[0].send_after_days, 1);
        assert_eq!(s.reports[0].at.to_string(), "08:00:00");
        assert_eq!(s.reports[1].at.to_string(), "14:30:00");
        assert!(matches!(s.reports[1].source, SourceSettings::Sql { .. }));
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (FILE.replace("unit = \"BS03\"\n", ""), "unit is not set"),
            (FILE.replace("\"201901\"", "\"2019-01\""), "first_period"),
            (FILE.replace("\"14:30\"", "\"2pm\""), "\"2pm\""),
            (
                FILE.replace("folder = \"/srv/drop\"", ""),
                "needs exactly one source",
            ),
            (FILE.replace("outbox =", "outbx ="), "outbx"),
            (
                FILE.replace("postgres://district@db", "mysql://x"),
                "neither sqlite",
            ),
            (
                format!("{FILE}\n[tls]\nca = \"ca.pem\"\n"),
                "missing: cert, key",
            ),
        ];
        for (text, expected) in cases {
            let (_dir, path) = write(&text);
            let err = AgentSettings::resolve(Some(&path), |_| None, AgentLayer::default())
                .expect_err(expected);
            assert!(err.to_string().contains(expected), "{err}");
        }
    }

    #[test]
    fn tls_needs_an_https_endpoint() {
        let text = format!("{FILE}\n[tls]\nca = \"ca.pem\"\ncert = \"c.pem\"\nkey = \"k.pem\"\n");
        let (_dir, path) = write(&text);
        let err = AgentSettings::resolve(Some(&path), |_| None, AgentLayer::default())
            .expect_err("plaintext endpoint");
        assert!(err.to_string().contains("https://"), "{err}");
        let s = AgentSettings::resolve(
            Some(&path),
            |k| (k == "TONGHOP_AGENT_ENDPOINT").then(|| "https://tinh.example:443".into()),
            AgentLayer::default(),
        )
        .expect("https endpoint");
        assert_eq!(s.tls.map(|t| t.key), Some(PathBuf::from("k.pem")));
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/agent.example.toml");
        let s = AgentSettings::resolve(Some(&path), |_| None, AgentLayer::default())
            .expect("example parses");
        assert_eq!(s.outbox, PathBuf::from(DEFAULT_OUTBOX));
        assert!(!s.reports.is_empty());
    }
}
