//! The gate every tonghop call passes before any handler runs: the verified client certificate
//! becomes a `Principal` (or the call is refused as UNAUTHENTICATED), the per-principal rate
//! limit is applied (UNAVAILABLE with RetryInfo, so well-behaved agents back off), and handlers
//! ask `authorize` through `allowed` below.

use crate::domain::UnitTree;
use crate::security::identity::principal_from_der;
use crate::security::rate::RateLimiter;
use crate::security::{Action, Policy, Principal, authorize};
use std::sync::Arc;
use std::time::Instant;
use tonic::service::Interceptor;
use tonic::{Code, Request, Status};
use tonic_types::{ErrorDetails, StatusExt};

#[derive(Clone)]
pub struct Gate {
    /// False only with `--insecure`: then nobody is identified and the policy is not applied.
    pub mutual_tls: bool,
    pub limiter: Option<Arc<RateLimiter>>,
}

impl Interceptor for Gate {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let principal = if self.mutual_tls {
            // The TLS layer already refused connections without a certificate from our CA;
            // this only reads who the certificate names.
            let certs = request
                .peer_certs()
                .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
            let leaf = certs
                .first()
                .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
            principal_from_der(leaf.as_ref()).map_err(|e| {
                tracing::warn!(error = %e, "call refused: unusable client certificate");
                Status::unauthenticated(e.to_string())
            })?
        } else {
            Principal::Insecure
        };
        // Without TLS every caller is the same anonymous principal: a per-principal limit
        // would throttle the whole province as one caller, so it applies to identities only.
        if let Some(limiter) = self.limiter.as_ref().filter(|_| self.mutual_tls)
            && let Err(wait) = limiter.check(&principal, Instant::now())
        {
            tracing::warn!(principal = %principal, retry_in_ms = wait.as_millis() as u64, "rate limit reached");
            return Err(Status::with_error_details(
                Code::Unavailable,
                format!(
                    "rate limit for {principal} reached; retry in {} ms",
                    wait.as_millis().max(1)
                ),
                ErrorDetails::with_retry_info(Some(wait)),
            ));
        }
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// The checks handlers make: the policy, the unit tree, and who is calling.
#[derive(Clone)]
pub struct Guard {
    pub policy: Policy,
    pub units: Arc<UnitTree>,
}

impl Guard {
    /// Who is calling. The gate always records it; a request without one did not pass the
    /// gate, and is refused rather than guessed at.
    pub fn principal<T>(request: &Request<T>) -> Result<Principal, Status> {
        request
            .extensions()
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| Status::unauthenticated("caller not identified"))
    }

    /// `Ok` or PERMISSION_DENIED naming the principal and the action (and a log line).
    pub fn allowed(&self, principal: &Principal, action: Action) -> Result<(), Status> {
        authorize(principal, &action, &self.policy, &self.units).map_err(|denied| {
            tracing::warn!(principal = %denied.principal, action = %denied.action, "permission denied");
            Status::permission_denied(denied.to_string())
        })
    }
}
