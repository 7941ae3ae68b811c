//! The one table that maps domain errors to gRPC status codes, following the OTLP retry rules:
//! a client retries UNAVAILABLE (with the RetryInfo delay) and never retries INVALID_ARGUMENT,
//! ALREADY_EXISTS or INTERNAL.
//!
//! | domain error                          | code             | details                  |
//! |---------------------------------------|------------------|--------------------------|
//! | `IngestError::Invalid`                | INVALID_ARGUMENT | `google.rpc.BadRequest`  |
//! | `IngestError::SubmissionIdReused`     | ALREADY_EXISTS   |                          |
//! | `StoreError::Unavailable`             | UNAVAILABLE      | `google.rpc.RetryInfo`   |
//! | `StoreError::Corrupt` / `Internal`    | INTERNAL         |                          |
//! | `QueryError::Invalid` (unknown code,  | INVALID_ARGUMENT | `google.rpc.BadRequest`  |
//! |   period not whole)                   |                  |                          |
//! | `QueryError::Invalid(UnknownUnit)`    | NOT_FOUND        |                          |
//! | `QueryError::Store`                   | as `StoreError`  |                          |
//! | `QueryError::Task`, engine failure    | INTERNAL         |                          |

use super::convert::violation_to_pb;
use super::pb;
use crate::analytics::AnalyticsError;
use crate::domain::Violation;
use crate::ingest::IngestError;
use crate::query::QueryError;
use crate::store::StoreError;
use std::time::Duration;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// How long a client should wait after the store reported itself unavailable.
pub const RETRY_DELAY_STORE_UNAVAILABLE: Duration = Duration::from_secs(1);

pub fn code_of(error: &IngestError) -> Code {
    match error {
        IngestError::Invalid(_) => Code::InvalidArgument,
        IngestError::SubmissionIdReused { .. } => Code::AlreadyExists,
        IngestError::Store(StoreError::Unavailable(_)) => Code::Unavailable,
        IngestError::Store(StoreError::Corrupt(_) | StoreError::Internal(_)) => Code::Internal,
    }
}

/// Whether a client may send the same thing again later (the OTLP table).
pub fn is_retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::OutOfRange
            | Code::Unavailable
            | Code::DataLoss
    )
}

/// Violations listed in the error details. They travel in the `grpc-status-details-bin`
/// trailer, and HTTP/2 clients refuse header blocks over 16 KiB (about 90 violations): past
/// this many the list is cut and a last entry says how many more there were.
pub const MAX_LISTED_VIOLATIONS: usize = 50;

/// And at most this many bytes of them (before base64): echoed values of multi-byte text can
/// make even a few violations large.
pub const MAX_LISTED_BYTES: usize = 6 * 1024;

pub fn invalid_argument(violations: &[Violation]) -> Status {
    let message = summary(violations);
    let mut listed: Vec<FieldViolation> = Vec::new();
    let mut bytes = 0;
    for v in violations {
        let description = format!("{} (value: {:?})", v.description, v.value);
        bytes += v.field.len() + description.len() + v.rule.len();
        if listed.len() == MAX_LISTED_VIOLATIONS || bytes > MAX_LISTED_BYTES {
            break;
        }
        listed.push(FieldViolation {
            field: v.field.clone(),
            // BadRequest has no value field: the value goes into the description, the stable
            // rule name into `reason`.
            description,
            reason: v.rule.clone(),
            localized_message: None,
        });
    }
    if violations.len() > listed.len() {
        listed.push(FieldViolation {
            field: String::new(),
            description: format!(
                "{} more problems not listed; fix these and send again",
                violations.len() - listed.len()
            ),
            reason: "more_violations".into(),
            localized_message: None,
        });
    }
    let details = ErrorDetails::with_bad_request(listed);
    Status::with_error_details(Code::InvalidArgument, message, details)
}

fn summary(violations: &[Violation]) -> String {
    let mut message = format!("report rejected: {} problem(s)", violations.len());
    for v in violations.iter().take(3) {
        message.push_str(&format!("; {}: {} [{}]", v.field, v.description, v.rule));
    }
    if violations.len() > 3 {
        message.push_str("; ...");
    }
    message
}

pub fn to_status(error: &IngestError) -> Status {
    match error {
        IngestError::Invalid(violations) => invalid_argument(violations),
        IngestError::Store(StoreError::Unavailable(reason)) => Status::with_error_details(
            Code::Unavailable,
            format!("store unavailable, retry later: {reason}"),
            ErrorDetails::with_retry_info(Some(RETRY_DELAY_STORE_UNAVAILABLE)),
        ),
        // Internal details go to the server log, not to the client.
        IngestError::Store(e) => {
            tracing::error!(error = %e, "store failure");
            Status::new(
                code_of(error),
                "internal store error; the report was not stored",
            )
        }
        other => Status::new(code_of(other), other.to_string()),
    }
}

/// The per-report outcome inside a batch answer.
pub fn to_rejection(error: &IngestError) -> pb::Rejection {
    let code = code_of(error);
    pb::Rejection {
        code: code as i32,
        message: match error {
            IngestError::Store(StoreError::Corrupt(_) | StoreError::Internal(_)) => {
                "internal store error; the report was not stored".to_owned()
            }
            other => other.to_string(),
        },
        violations: match error {
            IngestError::Invalid(v) => v.iter().map(violation_to_pb).collect(),
            _ => Vec::new(),
        },
        retryable: is_retryable(code),
    }
}

/// Analytics errors: the client asked for something that does not exist or cannot be built.
pub fn query_status(error: &QueryError) -> Status {
    let violation = |field: &str, value: &str, rule: &str| {
        invalid_argument(&[Violation {
            field: field.into(),
            value: value.into(),
            rule: rule.into(),
            description: error.to_string(),
        }])
    };
    match error {
        QueryError::Invalid(AnalyticsError::UnknownUnit(unit)) => {
            Status::not_found(format!("no reporting unit {unit}"))
        }
        QueryError::Invalid(AnalyticsError::UnknownDataSet(code)) => {
            violation("query.data_set", code, "unknown_data_set")
        }
        QueryError::Invalid(AnalyticsError::UnknownIndicator { indicator, .. }) => {
            violation("query.indicators", indicator, "unknown_indicator")
        }
        QueryError::Invalid(AnalyticsError::PeriodNotAligned { period, .. }) => {
            violation("query.period", period, "period_not_whole")
        }
        QueryError::Invalid(AnalyticsError::Unsupported(what)) => {
            violation("query", what, "unsupported")
        }
        QueryError::Store(e) => to_status(&IngestError::Store(e.clone())),
        QueryError::Invalid(AnalyticsError::Engine(_)) | QueryError::Task(_) => {
            tracing::error!(error = %error, "analytics failure");
            Status::internal("analytics failed; see the server log")
        }
    }
}
