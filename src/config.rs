//! Layered settings for `tonghop serve`: built-in defaults < settings file < `TONGHOP_*`
//! environment variables < command-line flags. Each layer may set any subset of fields.

use crate::domain::ValidationLimits;
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
        }
    }
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
    /// `TONGHOP_MAX_VALUES` through `lookup` (the process environment in production).
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
    fn unknown_keys_in_the_file_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("t.toml");
        std::fs::write(&file, "lisen = \"0.0.0.0:1\"\n").expect("write");
        let err =
            Settings::resolve(Some(&file), |_| None, SettingsLayer::default()).expect_err("typo");
        assert!(err.to_string().contains("lisen"), "{err}");
    }
}
