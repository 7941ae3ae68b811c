//! The ingest benchmark's simulated units speak gRPC straight over the `h2` crate: one HTTP/2
//! connection per unit, each submit a HEADERS frame and then one DATA frame that ends the
//! stream, sent once h2 has opened the stream, which is how tonic's client (the agent's) puts a
//! call on the wire: the server gets the same frames and segments from the benchmark as from
//! district nodes. What differs is only the generator's own CPU. It shares the benchmark
//! machine's two cores with the server it measures, while a district node runs on a machine of
//! its own, so what it spends on its side of each call is a cost of the measurement, not of the
//! system: tonic's client spent about 59 µs a report here (its Channel's buffer task, hyper's
//! body pipe and dispatch tasks), this one about 33 (means of 18 runs each). Unary `Submit` only, plaintext only, no
//! reconnecting: everything real (the agent, `tonghop submit`, the tests' clients) uses
//! `AggregatorClient`, which `tests/ingest_e2e.rs` and `tests/overload.rs` hold this client to,
//! answer for answer, and `bench ingest --client tonic` puts the benchmark's units on it.

use super::client::SubmitFailure;
use super::convert::{draft_to_pb, receipt_from_pb};
use super::pb;
use super::status::is_retryable;
use crate::domain::{Receipt, ReportDraft};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue, TE};
use prost::Message;
use std::time::Duration;
use tonic::{Code, Status};

/// The method every call of this client names.
const SUBMIT_PATH: &str = "/tonghop.v1.IngestService/Submit";

/// A call's whole time, answer included, as `AggregatorClient` allows it: a server that stops
/// answering fails the run instead of holding it forever.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest answer read, as tonic's client decodes by default: a receipt is a few hundred
/// bytes, so anything near this is not one.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// The header whose base64 holds the status details (RetryInfo, BadRequest).
const STATUS_DETAILS: &str = "grpc-status-details-bin";

/// A `SubmitRequest` in gRPC's framing, ready to send (cheap to clone: the bytes are shared).
#[derive(Debug, Clone)]
pub struct EncodedReport(Bytes);

/// One simulated unit's connection to the aggregator.
pub struct LeanSubmitClient {
    send: h2::client::SendRequest<Bytes>,
    /// `http://host:port`, the request's `:authority` and `:scheme`.
    uri: http::Uri,
}

impl LeanSubmitClient {
    /// Opens the TCP connection and the HTTP/2 session on it; the session's frames are read and
    /// written by a task of its own, as long as this client lives.
    pub async fn connect(endpoint: &str) -> anyhow::Result<Self> {
        let base: http::Uri = endpoint
            .parse()
            .map_err(|e| anyhow::anyhow!("bad endpoint {endpoint:?}: {e}"))?;
        if base.scheme_str() != Some("http") {
            anyhow::bail!("the load generator speaks plaintext only, not {endpoint:?}");
        }
        let authority = base
            .authority()
            .ok_or_else(|| anyhow::anyhow!("endpoint {endpoint:?} names no host and port"))?
            .clone();
        let tcp = tokio::net::TcpStream::connect(authority.as_str())
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach the aggregator at {endpoint}: {e}"))?;
        tcp.set_nodelay(true)
            .map_err(|e| anyhow::anyhow!("TCP_NODELAY on the connection to {endpoint}: {e}"))?;
        let (send, connection) = h2::client::handshake(tcp)
            .await
            .map_err(|e| anyhow::anyhow!("HTTP/2 handshake with {endpoint}: {e}"))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "load generator connection ended");
            }
        });
        let uri = http::Uri::builder()
            .scheme("http")
            .authority(authority)
            .path_and_query(SUBMIT_PATH)
            .build()?;
        Ok(LeanSubmitClient { send, uri })
    }

    /// A report as it goes on the wire: encoded once, so that a resend after a shed call, or
    /// a load generator that prepares its reports before its clock starts, does not encode again.
    pub fn encode(draft: &ReportDraft) -> EncodedReport {
        EncodedReport(framed(&pb::SubmitRequest {
            report: Some(draft_to_pb(draft)),
        }))
    }

    /// Submits one report, as `AggregatorClient::submit` does: the receipt, or the failure with
    /// the server's code, violations and retry delay.
    pub async fn submit(&mut self, draft: &ReportDraft) -> Result<Receipt, SubmitFailure> {
        self.submit_encoded(&Self::encode(draft)).await
    }

    /// `submit` for a report encoded beforehand.
    pub async fn submit_encoded(
        &mut self,
        report: &EncodedReport,
    ) -> Result<Receipt, SubmitFailure> {
        match tokio::time::timeout(CALL_TIMEOUT, self.exchange(report.0.clone())).await {
            Ok(answered) => answered,
            Err(_) => Err(SubmitFailure::not_retryable(
                Code::DeadlineExceeded,
                format!(
                    "no answer from the aggregator within {} s",
                    CALL_TIMEOUT.as_secs()
                ),
            )),
        }
    }

    /// One call: the request out, the answer read whole, its status judged as tonic's client
    /// judges it.
    async fn exchange(&mut self, frame: Bytes) -> Result<Receipt, SubmitFailure> {
        let response = self.call(frame).await.map_err(transport)?;
        let (head, mut body) = response.into_parts();
        // An error normally comes as headers alone ("trailers-only"), the status among them.
        if let Some(status) = status_in(&head.headers)?
            && status.code() != Code::Ok
        {
            return Err(SubmitFailure::from_status(&status));
        }
        let mut message = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(transport)?;
            // Handing the window back at once keeps the peer sending without waiting for h2
            // to take the stream's share back when it closes.
            let _ = body.flow_control().release_capacity(chunk.len());
            if message.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(SubmitFailure::not_retryable(
                    Code::ResourceExhausted,
                    format!("an answer over {MAX_ANSWER_BYTES} bytes is not a receipt"),
                ));
            }
            message.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await.map_err(transport)?;
        let status = match trailers.as_ref() {
            Some(trailers) => status_in(trailers)?,
            None => None,
        };
        match status {
            Some(status) if status.code() == Code::Ok => {}
            Some(status) => return Err(SubmitFailure::from_status(&status)),
            // No grpc-status at all: what the HTTP status says, as tonic's client reads it.
            None => return Err(without_grpc_status(head.status)),
        }
        let answer = unframed(message.freeze())
            .and_then(|bytes| pb::SubmitResponse::decode(bytes).ok())
            .ok_or_else(SubmitFailure::malformed_receipt)?;
        answer
            .receipt
            .and_then(receipt_from_pb)
            .ok_or_else(SubmitFailure::malformed_receipt)
    }

    /// Sends the request as tonic's client does: the HEADERS frame, then, once h2 has opened
    /// the stream (which writes the HEADERS) and given it room, the one DATA frame that ends it.
    /// Queuing both at once would save the server a read per call that agents never save it, and
    /// the benchmark would measure a lighter load than district nodes send. A server may answer
    /// before the message goes (the overload layer sheds on the headers alone): its answer is
    /// the call's outcome then.
    async fn call(&mut self, frame: Bytes) -> Result<http::Response<h2::RecvStream>, h2::Error> {
        let mut request = http::Request::new(());
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = self.uri.clone();
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(TE, HeaderValue::from_static("trailers"));
        futures::future::poll_fn(|cx| self.send.poll_ready(cx)).await?;
        let (response, mut stream) = self.send.send_request(request, false)?;
        stream.reserve_capacity(frame.len());
        let has_room = loop {
            if stream.capacity() > 0 {
                break true;
            }
            match futures::future::poll_fn(|cx| stream.poll_capacity(cx)).await {
                Some(Ok(_)) => {}
                // The stream takes no more data: the server answered or reset it first.
                Some(Err(_)) | None => break false,
            }
        };
        // h2 keeps whatever part of the frame exceeds the room it gave until it has more.
        let unsent = if has_room {
            stream.send_data(frame, true).err()
        } else {
            None
        };
        match response.await {
            Ok(answer) => Ok(answer),
            Err(e) => Err(unsent.unwrap_or(e)),
        }
    }
}

/// The gRPC status in `headers`, if there is one. tonic's parser panics on status details that
/// are not base64, and those come from the network: they are refused here first.
fn status_in(headers: &HeaderMap) -> Result<Option<Status>, SubmitFailure> {
    use base64::Engine;
    use base64::engine::DecodePaddingMode;
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    // tonic's own reading: the standard alphabet, padded or not.
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    if let Some(details) = headers.get(STATUS_DETAILS)
        && LENIENT.decode(details.as_bytes()).is_err()
    {
        return Err(SubmitFailure::not_retryable(
            Code::Internal,
            format!("the aggregator's {STATUS_DETAILS} is not base64"),
        ));
    }
    Ok(Status::from_header_map(headers))
}

/// An answer that ended without a grpc-status: the gRPC spec's table from HTTP status to code,
/// as tonic's client applies it (a proxy's 503 is worth retrying; a 200 without a status may
/// have been cut short, and is UNKNOWN).
fn without_grpc_status(http_status: http::StatusCode) -> SubmitFailure {
    use http::StatusCode as H;
    let code = match http_status {
        H::BAD_REQUEST => Code::Internal,
        H::UNAUTHORIZED => Code::Unauthenticated,
        H::FORBIDDEN => Code::PermissionDenied,
        H::NOT_FOUND => Code::Unimplemented,
        H::TOO_MANY_REQUESTS | H::BAD_GATEWAY | H::SERVICE_UNAVAILABLE | H::GATEWAY_TIMEOUT => {
            Code::Unavailable
        }
        // A 200 without a status included: the stream may have been cut short.
        _ => Code::Unknown,
    };
    SubmitFailure {
        retryable: is_retryable(code),
        ..SubmitFailure::not_retryable(
            code,
            format!("the aggregator answered HTTP {http_status} with no grpc-status"),
        )
    }
}

/// A message in gRPC's length-prefixed framing: no compression, a 4-byte big-endian length.
fn framed(message: &impl Message) -> Bytes {
    let length = message.encoded_len();
    let mut frame = BytesMut::with_capacity(5 + length);
    frame.put_u8(0);
    // A message past 4 GiB (nothing here builds one) would be announced as the largest length
    // and refused by the server as oversized, not sent with a wrapped length.
    frame.put_u32(u32::try_from(length).unwrap_or(u32::MAX));
    // Cannot fail: the buffer was sized for the message.
    let _ = message.encode(&mut frame);
    frame.freeze()
}

/// The one message of a unary answer, or `None` if the frame is not exactly that.
fn unframed(mut frame: Bytes) -> Option<Bytes> {
    if frame.len() < 5 || frame.get_u8() != 0 {
        return None;
    }
    let length = frame.get_u32() as usize;
    (frame.len() == length).then_some(frame)
}

/// A broken connection or a reset stream: reported, not marked retryable, unlike tonic's
/// UNAVAILABLE for the same events. This client does not reconnect, and the benchmark that uses
/// it counts either as a failed run, not as load it measures.
fn transport(e: h2::Error) -> SubmitFailure {
    SubmitFailure::not_retryable(
        Code::Unavailable,
        format!("connection to the aggregator: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::{LeanSubmitClient, framed, unframed};
    use crate::domain::{DraftValue, Narrative, ReportDraft};
    use crate::grpc::pb;
    use bytes::Bytes;
    use http::HeaderMap;
    use prost::Message;
    use std::time::Duration;
    use tokio::net::TcpListener;
    use tonic::{Code, Status};
    use tonic_types::{ErrorDetails, StatusExt};

    #[test]
    fn a_message_is_framed_with_no_compression_and_its_length_and_read_back() {
        let request = pb::ListUnitsRequest {
            root: "BS03".into(),
        };
        let frame = framed(&request);
        // Field 1, wire type 2: tag 0x0a, length 4, "BS03": 6 bytes after the 5-byte prefix.
        assert_eq!(&frame[..5], &[0, 0, 0, 0, 6]);
        assert_eq!(&frame[5..], b"\x0a\x04BS03");
        let message = unframed(frame).expect("one whole message");
        let decoded = pb::ListUnitsRequest::decode(message).expect("decodes");
        assert_eq!(decoded.root, "BS03");
    }

    #[test]
    fn anything_but_one_uncompressed_whole_message_is_not_an_answer() {
        // Compressed flag set.
        assert!(unframed(Bytes::from_static(&[1, 0, 0, 0, 1, 0])).is_none());
        // Announces 2 bytes, carries 1; announces 1, carries 2; shorter than the prefix.
        assert!(unframed(Bytes::from_static(&[0, 0, 0, 0, 2, 0])).is_none());
        assert!(unframed(Bytes::from_static(&[0, 0, 0, 0, 1, 0, 0])).is_none());
        assert!(unframed(Bytes::from_static(&[0, 0, 0])).is_none());
        // An empty message is a whole one.
        assert_eq!(
            unframed(Bytes::from_static(&[0, 0, 0, 0, 0])),
            Some(Bytes::new())
        );
    }

    /// What the scripted server answers to the one call it takes.
    enum Answer {
        /// HTTP 200, a message, then these trailers.
        MessageThenTrailers(HeaderMap),
        /// HTTP 200 and a message that ends the stream: no trailers, no status.
        MessageWithoutTrailers,
        /// This HTTP status, headers only, no grpc-status (a proxy's answer).
        HttpOnly(u16),
        /// The stream reset instead of answered.
        Reset,
        /// Answered on the headers alone, the body unread, as the overload layer sheds a call.
        EarlyTrailersOnly(HeaderMap),
    }

    /// A server on its own port that answers one call as scripted, over real HTTP/2: the
    /// aggregator itself never sends most of these, but a proxy or a broken peer can.
    async fn scripted(answer: Answer) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            let mut connection = h2::server::handshake(tcp).await.expect("handshake");
            let mut answer = Some(answer);
            // The connection is driven here; each call is answered on a task of its own.
            while let Some(Ok((request, respond))) = connection.accept().await {
                if let Some(answer) = answer.take() {
                    tokio::spawn(answer_one(request, respond, answer));
                }
            }
        });
        format!("http://{addr}")
    }

    async fn answer_one(
        request: http::Request<h2::RecvStream>,
        mut respond: h2::server::SendResponse<Bytes>,
        answer: Answer,
    ) {
        if let Answer::EarlyTrailersOnly(status) = answer {
            let mut response = http::Response::builder()
                .status(200)
                .header("content-type", "application/grpc")
                .body(())
                .expect("response");
            response.headers_mut().extend(status);
            respond.send_response(response, true).expect("headers");
            return;
        }
        let mut body = request.into_body();
        while let Some(Ok(chunk)) = body.data().await {
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        let message = framed(&pb::SubmitResponse::default());
        let ok = || {
            http::Response::builder()
                .status(200)
                .header("content-type", "application/grpc")
                .body(())
                .expect("response")
        };
        match answer {
            Answer::MessageThenTrailers(trailers) => {
                let mut stream = respond.send_response(ok(), false).expect("headers");
                stream.send_data(message, false).expect("data");
                stream.send_trailers(trailers).expect("trailers");
            }
            Answer::MessageWithoutTrailers => {
                let mut stream = respond.send_response(ok(), false).expect("headers");
                stream.send_data(message, true).expect("data");
            }
            Answer::HttpOnly(status) => {
                let response = http::Response::builder()
                    .status(status)
                    .body(())
                    .expect("response");
                respond.send_response(response, true).expect("headers");
            }
            Answer::Reset => respond.send_reset(h2::Reason::REFUSED_STREAM),
            Answer::EarlyTrailersOnly(_) => {}
        }
    }

    fn report() -> ReportDraft {
        ReportDraft {
            submission_id: "s-1".into(),
            unit_code: "BS03".into(),
            data_set: "DVCQ_THANG".into(),
            period: "201909".into(),
            values: vec![DraftValue {
                indicator: "tiep_cong_dan".into(),
                value: 2.0,
                comment: String::new(),
            }],
            narrative: Narrative::default(),
            prepared_by: "test".into(),
            client_time: None,
        }
    }

    async fn submit_to(answer: Answer) -> super::SubmitFailure {
        let endpoint = scripted(answer).await;
        let mut client = LeanSubmitClient::connect(&endpoint).await.expect("connect");
        client.submit(&report()).await.expect_err("not a receipt")
    }

    fn trailers_of(status: &Status) -> HeaderMap {
        let mut trailers = HeaderMap::new();
        status.add_header(&mut trailers).expect("status as headers");
        trailers
    }

    #[tokio::test]
    async fn an_error_status_in_the_trailers_after_a_message_is_the_answer() {
        let failed = submit_to(Answer::MessageThenTrailers(trailers_of(&Status::internal(
            "disk on fire",
        ))))
        .await;
        assert_eq!(
            (failed.code, failed.message.as_str()),
            (Code::Internal, "disk on fire")
        );
        assert!(!failed.retryable);

        // Retry advice read from the trailers' details.
        let shed = Status::with_error_details(
            Code::Unavailable,
            "busy",
            ErrorDetails::with_retry_info(Some(Duration::from_millis(250))),
        );
        let failed = submit_to(Answer::MessageThenTrailers(trailers_of(&shed))).await;
        assert_eq!(failed.code, Code::Unavailable);
        assert!(failed.retryable);
        assert_eq!(failed.retry_after, Some(Duration::from_millis(250)));
    }

    #[tokio::test]
    async fn a_call_shed_on_its_headers_alone_gets_the_servers_answer() {
        let shed = Status::with_error_details(
            Code::Unavailable,
            "overloaded",
            ErrorDetails::with_retry_info(Some(Duration::from_millis(200))),
        );
        let failed = submit_to(Answer::EarlyTrailersOnly(trailers_of(&shed))).await;
        assert_eq!(
            (failed.code, failed.message.as_str()),
            (Code::Unavailable, "overloaded")
        );
        assert!(failed.retryable);
        assert_eq!(failed.retry_after, Some(Duration::from_millis(200)));
    }

    #[tokio::test]
    async fn status_details_that_are_not_base64_are_refused_not_a_panic() {
        let mut trailers = trailers_of(&Status::unavailable("busy"));
        trailers.insert(
            "grpc-status-details-bin",
            http::HeaderValue::from_static("not*base64!"),
        );
        let failed = submit_to(Answer::MessageThenTrailers(trailers)).await;
        assert_eq!(failed.code, Code::Internal);
        assert!(failed.message.contains("not base64"), "{}", failed.message);
    }

    #[tokio::test]
    async fn an_answer_without_a_grpc_status_is_read_from_its_http_status_as_tonic_reads_it() {
        // A message that ends the stream with no status may have been cut short.
        let failed = submit_to(Answer::MessageWithoutTrailers).await;
        assert_eq!(failed.code, Code::Unknown);
        assert!(!failed.retryable);
        // A proxy's 503: worth retrying. Its 404: the method is not there.
        let failed = submit_to(Answer::HttpOnly(503)).await;
        assert_eq!(failed.code, Code::Unavailable);
        assert!(failed.retryable, "{failed:?}");
        let failed = submit_to(Answer::HttpOnly(404)).await;
        assert_eq!(failed.code, Code::Unimplemented);
        assert!(!failed.retryable);
    }

    #[tokio::test]
    async fn a_reset_stream_fails_the_call_and_is_not_retried() {
        let failed = submit_to(Answer::Reset).await;
        assert_eq!(failed.code, Code::Unavailable);
        assert!(
            failed.message.contains("refused stream"),
            "{}",
            failed.message
        );
        // The benchmark stops on it rather than measure a peer that resets its calls.
        assert!(!failed.retryable);
    }
}
