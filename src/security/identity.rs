//! The identity scheme: who a client certificate names, carried in a SAN URI.
//!
//! | URI                          | principal                      |
//! |------------------------------|--------------------------------|
//! | `urn:tonghop:unit:<CODE>`    | the reporting unit `<CODE>`    |
//! | `urn:tonghop:role:analyst`   | a provincial analyst           |
//! | `urn:tonghop:role:admin`     | an administrator               |
//!
//! A URI, not the common name, because SAN URIs are structured, and several tools (and
//! SPIFFE) already treat them as the workload identity.

use super::Principal;
use crate::domain::UnitCode;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

pub const UNIT_PREFIX: &str = "urn:tonghop:unit:";
pub const ROLE_ANALYST: &str = "urn:tonghop:role:analyst";
pub const ROLE_ADMIN: &str = "urn:tonghop:role:admin";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("the client certificate cannot be read: {0}")]
    Unreadable(String),
    #[error(
        "the client certificate names no tonghop identity (a SAN URI {UNIT_PREFIX}<CODE>, \
         {ROLE_ANALYST} or {ROLE_ADMIN})"
    )]
    NoIdentity,
    #[error("the client certificate names several identities: {0}")]
    Ambiguous(String),
    #[error("the client certificate names unit {0:?}, which is not a valid unit code")]
    BadUnit(String),
}

/// The SAN URI for a principal, as `certs` writes it.
pub fn uri_of(principal: &Principal) -> Option<String> {
    match principal {
        Principal::Unit(code) => Some(format!("{UNIT_PREFIX}{code}")),
        Principal::Analyst => Some(ROLE_ANALYST.into()),
        Principal::Admin => Some(ROLE_ADMIN.into()),
        Principal::Insecure => None,
    }
}

/// Reads the principal from a DER certificate (already verified by the TLS layer).
pub fn principal_from_der(der: &[u8]) -> Result<Principal, IdentityError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| IdentityError::Unreadable(e.to_string()))?;
    let mut found = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::URI(uri) = name {
                if let Some(code) = uri.strip_prefix(UNIT_PREFIX) {
                    let unit =
                        UnitCode::parse(code).map_err(|_| IdentityError::BadUnit(code.into()))?;
                    found.push(Principal::Unit(unit));
                } else if *uri == ROLE_ANALYST {
                    found.push(Principal::Analyst);
                } else if *uri == ROLE_ADMIN {
                    found.push(Principal::Admin);
                }
            }
        }
    }
    match found.len() {
        0 => Err(IdentityError::NoIdentity),
        1 => Ok(found.remove(0)),
        _ => Err(IdentityError::Ambiguous(
            found
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
}
