//! A unary request's body sent as one HTTP/2 DATA frame that also ends the stream. tonic
//! encodes a request as a body that learns it has ended only when polled once more after the
//! message, so hyper sends the message, then an empty frame to end the stream, each written to
//! the socket on its own: three TCP segments per call with the headers. Collected into one
//! buffer first, the body is known to end with the message, and a call is two segments: one
//! fewer write for the client and one fewer frame for the server, on every call of a district
//! node pushing its reports over a slow link.

use http_body_util::{BodyExt, Full};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tonic::body::Body;
use tower::BoxError;

/// Wraps a gRPC transport (the client's `Channel`) for unary calls only: a streaming request
/// would be held back until its last message.
#[derive(Debug, Clone)]
pub struct OneFrame<S> {
    inner: S,
}

impl<S> OneFrame<S> {
    pub fn new(inner: S) -> Self {
        OneFrame { inner }
    }
}

impl<S> tower::Service<http::Request<Body>> for OneFrame<S>
where
    S: tower::Service<http::Request<Body>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The service that answered ready is the one to call (a Channel reserves its slot in
        // poll_ready); a fresh clone stays behind for the next call.
        let fresh = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, fresh);
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            // A unary body is one encoded message that is already there: this does not wait.
            let message = body.collect().await?.to_bytes();
            let request = http::Request::from_parts(parts, Body::new(Full::new(message)));
            ready.call(request).await.map_err(Into::into)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::OneFrame;
    use bytes::Bytes;
    use http_body::Body as _;
    use http_body_util::BodyExt;
    use std::task::{Context, Poll};
    use tonic::body::Body;

    /// Stands in for the transport: hands back the body it was given, as hyper would see it.
    #[derive(Clone)]
    struct Echo;

    impl tower::Service<http::Request<Body>> for Echo {
        type Response = Body;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<Body, Self::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<Body>) -> Self::Future {
            std::future::ready(Ok(request.into_body()))
        }
    }

    #[tokio::test]
    async fn the_body_ends_with_its_one_data_frame() {
        use tower::Service;
        // As tonic encodes a unary request: a stream of one message, which reports its end only
        // when polled again after the message.
        let message = Bytes::from_static(b"\0\0\0\0\x03abc");
        let streamed = Body::new(http_body_util::StreamBody::new(futures::stream::iter([
            Ok::<_, tonic::Status>(http_body::Frame::data(message.clone())),
        ])));
        assert!(!streamed.is_end_stream());

        let mut body = OneFrame::new(Echo)
            .call(http::Request::new(streamed))
            .await
            .expect("echo");
        let frame = body.frame().await.expect("a frame").expect("no error");
        assert_eq!(frame.into_data().expect("data"), message);
        // What hyper checks to put END_STREAM on that same DATA frame.
        assert!(body.is_end_stream());
    }
}
