//! The outermost layer of the server: refuses requests that are not gRPC, and sheds load the
//! OTLP way: past `max_concurrent_calls` in flight, a call is answered at once
//! with UNAVAILABLE and `google.rpc.RetryInfo`, which clients retry after the delay. (tower's own
//! load-shed answers RESOURCE_EXHAUSTED without RetryInfo, which well-behaved clients must not
//! retry.) Refused calls cost no memory beyond their headers, so memory stays bounded.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Semaphore;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

#[derive(Clone)]
pub struct OverloadLayer {
    permits: Arc<Semaphore>,
    retry_after: Duration,
}

impl OverloadLayer {
    pub fn new(max_concurrent_calls: usize, retry_after: Duration) -> Self {
        OverloadLayer {
            permits: Arc::new(Semaphore::new(max_concurrent_calls.max(1))),
            retry_after,
        }
    }
}

impl<S> tower::Layer<S> for OverloadLayer {
    type Service = Overload<S>;
    fn layer(&self, inner: S) -> Overload<S> {
        Overload {
            inner,
            permits: self.permits.clone(),
            retry_after: self.retry_after,
        }
    }
}

#[derive(Clone)]
pub struct Overload<S> {
    inner: S,
    permits: Arc<Semaphore>,
    retry_after: Duration,
}

type Answer<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for Overload<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Answer<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // tonic decodes whatever arrives; a request that does not say it is gRPC is refused
        // before it reaches a handler (the gRPC spec's answer to a wrong content type).
        let is_grpc = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc"));
        if !is_grpc {
            let status = Status::invalid_argument("content-type must be application/grpc");
            let response = status.into_http();
            return Box::pin(async move { Ok(response) });
        }
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let answer = self.inner.call(request);
                Box::pin(async move {
                    let response = answer.await;
                    drop(permit);
                    response
                })
            }
            Err(_) => {
                tracing::warn!(path = %request.uri().path(), "overloaded: call refused with RetryInfo");
                let status = Status::with_error_details(
                    Code::Unavailable,
                    format!(
                        "aggregator overloaded; retry in {} ms",
                        self.retry_after.as_millis()
                    ),
                    ErrorDetails::with_retry_info(Some(self.retry_after)),
                );
                let response = status.into_http();
                Box::pin(async move { Ok(response) })
            }
        }
    }
}
