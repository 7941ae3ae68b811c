//! Layered settings for `tonghop serve`: built-in defaults < settings file < `TONGHOP_*`
//! environment variables < command-line flags. Each layer may set any subset of fields.

use crate::domain::ValidationLimits;
use crate::grpc::{ServerOptions, TlsFiles};
use crate::security::Policy;
use crate::security::rate::RateLimit;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/tonghop.db";
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// The resolved settings of an aggregator.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub listen: SocketAddr,
    /// `sqlite://FILE` (the default, under `./data/`) or `postgres://...`.
    pub database_url: String,
    /// Catalog TOML; `None` means the embedded *dân vận chính quyền* catalog.
    pub catalog: Option<PathBuf>,
    /// Units TOML or CSV; `None` means the embedded example province.
    pub units: Option<PathBuf>,
    /// Larger gRPC messages are refused by the transport before they are decoded.
    pub max_message_bytes: usize,
    pub db_max_connections: u32,
    pub limits: ValidationLimits,
    /// Mutual TLS files; all three or none.
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Plaintext without identities: must be asked for explicitly.
    pub insecure: bool,
    pub policy: Policy,
    pub rate_limit: Option<RateLimit>,
    pub request_timeout_secs: u64,
    pub concurrency_per_connection: usize,
    /// Calls in flight over all connections before the server sheds load.
    pub max_concurrent_calls: usize,
    /// Cron expression (sec min hour day month weekday, Asia/Ho_Chi_Minh) of the yearly
    /// review; empty to switch the schedule off.
    pub review_schedule: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 50051))),
            database_url: DEFAULT_DATABASE_URL.into(),
            catalog: None,
            units: None,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            db_max_connections: 8,
            limits: ValidationLimits::default(),
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            insecure: false,
            policy: Policy::default(),
            // A district sends a few reports a month; 20 calls a second with bursts of 100
            // leaves room for backfills and stops a runaway loop.
            rate_limit: Some(RateLimit {
                per_second: 20.0,
                burst: 100,
            }),
            request_timeout_secs: 30,
            concurrency_per_connection: 64,
            max_concurrent_calls: 1024,
            review_schedule: crate::review::schedule::DEFAULT_SCHEDULE.into(),
        }
    }
}

/// The `[tls]` table of a settings file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsLayer {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// One layer: every field optional. The settings file has this shape (see
/// `deploy/` for an example); env variables and flags fill the same fields.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsLayer {
    pub listen: Option<SocketAddr>,
    pub database_url: Option<String>,
    pub catalog: Option<PathBuf>,
    pub units: Option<PathBuf>,
    pub max_message_bytes: Option<usize>,
    pub db_max_connections: Option<u32>,
    pub max_text_chars: Option<usize>,
    pub max_values: Option<usize>,
    pub tls: Option<TlsLayer>,
    pub insecure: Option<bool>,
    pub policy: Option<Policy>,
    pub rate_limit: Option<RateLimit>,
    pub request_timeout_secs: Option<u64>,
    pub concurrency_per_connection: Option<usize>,
    pub max_concurrent_calls: Option<usize>,
    pub review_schedule: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read settings file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("settings file {path}: {source}")]
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
    #[error("{0}")]
    Security(String),
}

impl SettingsLayer {
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    /// Reads `TONGHOP_LISTEN`, `TONGHOP_DATABASE_URL`, `TONGHOP_CATALOG`, `TONGHOP_UNITS`,
    /// `TONGHOP_MAX_MESSAGE_BYTES`, `TONGHOP_DB_MAX_CONNECTIONS`, `TONGHOP_MAX_TEXT_CHARS`,
    /// `TONGHOP_MAX_VALUES`, `TONGHOP_TLS_CA`, `TONGHOP_TLS_CERT`, `TONGHOP_TLS_KEY`,
    /// `TONGHOP_INSECURE`, `TONGHOP_REQUEST_TIMEOUT_SECS`, `TONGHOP_REVIEW_SCHEDULE` through
    /// `lookup` (the process
    /// environment in production).
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        fn parsed<T: std::str::FromStr>(
            lookup: &impl Fn(&str) -> Option<String>,
            name: &str,
        ) -> Result<Option<T>, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            match lookup(name) {
                None => Ok(None),
                Some(value) => value
                    .parse()
                    .map(Some)
                    .map_err(|e: T::Err| ConfigError::Env {
                        name: name.into(),
                        value,
                        reason: e.to_string(),
                    }),
            }
        }
        Ok(SettingsLayer {
            listen: parsed(&lookup, "TONGHOP_LISTEN")?,
            database_url: lookup("TONGHOP_DATABASE_URL"),
            catalog: lookup("TONGHOP_CATALOG").map(PathBuf::from),
            units: lookup("TONGHOP_UNITS").map(PathBuf::from),
            max_message_bytes: parsed(&lookup, "TONGHOP_MAX_MESSAGE_BYTES")?,
            db_max_connections: parsed(&lookup, "TONGHOP_DB_MAX_CONNECTIONS")?,
            max_text_chars: parsed(&lookup, "TONGHOP_MAX_TEXT_CHARS")?,
            max_values: parsed(&lookup, "TONGHOP_MAX_VALUES")?,
            tls: Some(TlsLayer {
                ca: lookup("TONGHOP_TLS_CA").map(PathBuf::from),
                cert: lookup("TONGHOP_TLS_CERT").map(PathBuf::from),
                key: lookup("TONGHOP_TLS_KEY").map(PathBuf::from),
            }),
            insecure: parsed(&lookup, "TONGHOP_INSECURE")?,
            request_timeout_secs: parsed(&lookup, "TONGHOP_REQUEST_TIMEOUT_SECS")?,
            review_schedule: lookup("TONGHOP_REVIEW_SCHEDULE"),
            max_concurrent_calls: parsed(&lookup, "TONGHOP_MAX_CONCURRENT_CALLS")?,
            ..SettingsLayer::default()
        })
    }

    fn apply(self, s: &mut Settings) {
        if let Some(v) = self.listen {
            s.listen = v;
        }
        if let Some(v) = self.database_url {
            s.database_url = v;
        }
        if let Some(v) = self.catalog {
            s.catalog = Some(v);
        }
        if let Some(v) = self.units {
            s.units = Some(v);
        }
        if let Some(v) = self.max_message_bytes {
            s.max_message_bytes = v;
        }
        if let Some(v) = self.db_max_connections {
            s.db_max_connections = v;
        }
        if let Some(v) = self.max_text_chars {
            s.limits.max_text_chars = v;
        }
        if let Some(v) = self.max_values {
            s.limits.max_values = v;
        }
        if let Some(tls) = self.tls {
            s.tls_ca = tls.ca.or(s.tls_ca.take());
            s.tls_cert = tls.cert.or(s.tls_cert.take());
            s.tls_key = tls.key.or(s.tls_key.take());
        }
        if let Some(v) = self.insecure {
            s.insecure = v;
        }
        if let Some(v) = self.policy {
            s.policy = v;
        }
        if let Some(v) = self.rate_limit {
            s.rate_limit = Some(v);
        }
        if let Some(v) = self.request_timeout_secs {
            s.request_timeout_secs = v;
        }
        if let Some(v) = self.concurrency_per_connection {
            s.concurrency_per_connection = v;
        }
        if let Some(v) = self.max_concurrent_calls {
            s.max_concurrent_calls = v;
        }
        if let Some(v) = self.review_schedule {
            s.review_schedule = v;
        }
    }
}

impl Settings {
    /// defaults < file < env < flags.
    pub fn resolve(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: SettingsLayer,
    ) -> Result<Settings, ConfigError> {
        let mut settings = Settings::default();
        if let Some(path) = file {
            SettingsLayer::from_file(path)?.apply(&mut settings);
        }
        SettingsLayer::from_env(env)?.apply(&mut settings);
        flags.apply(&mut settings);
        Ok(settings)
    }
}

impl Settings {
    /// The review schedule, checked; `None` when switched off.
    pub fn review_schedule(
        &self,
    ) -> Result<Option<crate::review::schedule::ReviewSchedule>, ConfigError> {
        if self.review_schedule.trim().is_empty() {
            return Ok(None);
        }
        crate::review::schedule::ReviewSchedule::parse(&self.review_schedule)
            .map(Some)
            .map_err(ConfigError::Security)
    }

    /// What the server needs, refusing a configuration that would run without identities by
    /// accident: plaintext only when `insecure` says so.
    pub fn server_options(&self) -> Result<ServerOptions, ConfigError> {
        let tls = match (&self.tls_ca, &self.tls_cert, &self.tls_key) {
            (Some(ca), Some(cert), Some(key)) => Some(TlsFiles {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None, None) => None,
            _ => {
                return Err(ConfigError::Security(
                    "TLS needs all three of tls.ca, tls.cert and tls.key".into(),
                ));
            }
        };
        match (&tls, self.insecure) {
            (None, false) => Err(ConfigError::Security(
                "no TLS configured: give tls.ca, tls.cert and tls.key (`tonghop certs init` \
                 makes them), or run with --insecure to accept unidentified plaintext calls"
                    .into(),
            )),
            (Some(_), true) => Err(ConfigError::Security(
                "both TLS files and --insecure are set; choose one".into(),
            )),
            _ => Ok(ServerOptions {
                max_message_bytes: self.max_message_bytes,
                request_timeout: std::time::Duration::from_secs(self.request_timeout_secs.max(1)),
                concurrency_per_connection: self.concurrency_per_connection.max(1),
                max_concurrent_calls: self.max_concurrent_calls.max(1),
                tls,
                policy: self.policy,
                rate_limit: self.rate_limit,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn each_layer_overrides_the_one_below() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("tonghop.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:6000\"\ndatabase_url = \"sqlite://file.db\"\nmax_values = 7\n",
        )
        .expect("write");
        let env: HashMap<&str, &str> = [
            ("TONGHOP_DATABASE_URL", "postgres://env@localhost/db"),
            ("TONGHOP_MAX_VALUES", "9"),
        ]
        .into();
        let flags = SettingsLayer {
            max_values: Some(11),
            ..SettingsLayer::default()
        };
        let s = Settings::resolve(Some(&file), |k| env.get(k).map(|v| v.to_string()), flags)
            .expect("resolves");
        assert_eq!(s.listen.to_string(), "0.0.0.0:6000", "from the file");
        assert_eq!(
            s.database_url, "postgres://env@localhost/db",
            "env beats file"
        );
        assert_eq!(s.limits.max_values, 11, "flag beats env and file");
        assert_eq!(
            s.max_message_bytes, DEFAULT_MAX_MESSAGE_BYTES,
            "default kept"
        );
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let err = Settings::resolve(
            None,
            |k| (k == "TONGHOP_LISTEN").then(|| "nowhere".to_string()),
            SettingsLayer::default(),
        )
        .expect_err("bad address");
        assert!(
            err.to_string().contains("TONGHOP_LISTEN=\"nowhere\""),
            "{err}"
        );
    }

    #[test]
    fn the_shipped_example_settings_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/tonghop.example.toml");
        let s = Settings::resolve(Some(&path), |_| None, SettingsLayer::default())
            .expect("example settings parse");
        assert_eq!(s.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(s.limits, ValidationLimits::default());
    }

    #[test]
    fn plaintext_must_be_asked_for() {
        let plain = Settings::default();
        let err = plain.server_options().expect_err("no TLS, no --insecure");
        assert!(err.to_string().contains("--insecure"), "{err}");
        let insecure = Settings {
            insecure: true,
            ..Settings::default()
        };
        assert!(insecure.server_options().expect("allowed").tls.is_none());
        let half = Settings {
            tls_cert: Some("server.pem".into()),
            ..Settings::default()
        };
        assert!(half.server_options().is_err(), "TLS needs all three files");
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("t.toml");
        std::fs::write(&file, "lisen = \"0.0.0.0:1\"\n").expect("write");
        let err =
            Settings::resolve(Some(&file), |_| None, SettingsLayer::default()).expect_err("typo");
        assert!(err.to_string().contains("lisen"), "{err}");
    }
}
