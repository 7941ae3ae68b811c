//! Identifier newtypes, checked once when they enter the system so nothing downstream has to
//! wonder whether a code is empty, too long or full of control characters.

use std::fmt;

/// Why a string is not a valid code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("is empty")]
    Empty,
    #[error("is {len} characters long; at most {max} are allowed")]
    TooLong { len: usize, max: usize },
    #[error("contains {found:?}; only letters A-Z a-z, digits and {allowed} are allowed")]
    BadCharacter { found: char, allowed: &'static str },
}

fn check(raw: &str, max: usize, extra: &'static str) -> Result<(), CodeError> {
    if raw.is_empty() {
        return Err(CodeError::Empty);
    }
    let len = raw.chars().count();
    if len > max {
        return Err(CodeError::TooLong { len, max });
    }
    // ASCII only: codes end up in SQL parameters, file names and URIs, where look-alike
    // Unicode letters would make two different units print the same.
    if let Some(found) = raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || extra.contains(*c)))
    {
        return Err(CodeError::BadCharacter {
            found,
            allowed: extra,
        });
    }
    Ok(())
}

macro_rules! code_type {
    ($(#[$doc:meta])* $name:ident, $max:expr, $extra:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const MAX_LEN: usize = $max;

            pub fn parse(raw: &str) -> Result<Self, CodeError> {
                check(raw, $max, $extra)?;
                Ok(Self(raw.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(|e| {
                    serde::de::Error::custom(format!("{} {raw:?} {e}", stringify!($name)))
                })
            }
        }
    };
}

code_type!(
    /// A reporting unit in the unit tree (province, district, commune...), e.g. `BS03`.
    UnitCode, 32, "_-."
);
code_type!(
    /// A data set of the catalog, e.g. `DVCQ_THANG`.
    DataSetCode, 32, "_-."
);
code_type!(
    /// An indicator (data element) of the catalog, e.g. `hs_dung_han`.
    IndicatorCode, 64, "_-."
);
code_type!(
    /// The client-chosen idempotency key of one report.
    SubmissionId, 128, "_-.:"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_codes() {
        assert_eq!(
            UnitCode::parse("BS03").map(|c| c.to_string()),
            Ok("BS03".into())
        );
        assert!(SubmissionId::parse("bs03:DVCQ_THANG:201909:r1").is_ok());
    }

    #[test]
    fn rejects_empty_long_and_odd_characters() {
        assert_eq!(UnitCode::parse(""), Err(CodeError::Empty));
        assert_eq!(
            UnitCode::parse(&"A".repeat(33)),
            Err(CodeError::TooLong { len: 33, max: 32 })
        );
        assert!(matches!(
            UnitCode::parse("BS'; DROP TABLE"),
            Err(CodeError::BadCharacter { found: '\'', .. })
        ));
        assert!(matches!(
            UnitCode::parse("../etc"),
            Err(CodeError::BadCharacter { found: '/', .. })
        ));
        // A Cyrillic 'А' looks like a Latin 'A' and must not pass as one.
        assert!(matches!(
            UnitCode::parse("\u{0410}B01"),
            Err(CodeError::BadCharacter { .. })
        ));
    }
}
