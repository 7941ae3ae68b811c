//! The ingest benchmark's simulated units speak gRPC straight over the `h2` crate: one HTTP/2
//! connection per unit, each submit a HEADERS frame and one DATA frame that ends the stream,
//! queued together so that the connection writes them in one TCP segment. The load generator
//! shares the benchmark machine's two cores with the server it measures, while a district node
//! runs on a machine of its own, so what the generator spends on its side of each call is a
//! cost of the measurement, not of the system. tonic's client spent about twice this one's CPU
//! per report (its buffer task, and hyper's body pipe, which sends the HEADERS alone and the
//! DATA only once the new stream has been given send capacity: two segments a call, and two
//! reads for the server). Unary `Submit` only, plaintext only, no reconnecting: everything real
//! (the agent, `tonghop submit`, the tests' clients) uses `AggregatorClient`, which
//! `tests/ingest_e2e.rs` and `tests/overload.rs` hold this client to, answer for answer.

use super::client::SubmitFailure;
use super::convert::{draft_to_pb, receipt_from_pb};
use super::pb;
use crate::domain::{Receipt, ReportDraft};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;
use tonic::{Code, Status};

/// The method every call of this client names.
const SUBMIT_PATH: &str = "/tonghop.v1.IngestService/Submit";

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
        tcp.set_nodelay(true)?;
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
        let response = self.call(report.0.clone()).await.map_err(transport)?;
        let (head, mut body) = response.into_parts();
        // An error comes as headers alone ("trailers-only"), with the status among them.
        if let Some(status) = Status::from_header_map(&head.headers)
            && status.code() != Code::Ok
        {
            return Err(SubmitFailure::from_status(&status));
        }
        if head.status != http::StatusCode::OK {
            return Err(failure(
                Code::Unknown,
                format!("the aggregator answered HTTP {}", head.status),
            ));
        }
        let mut message = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(transport)?;
            // Hand the window back, or a long run of answers would stall the connection.
            let _ = body.flow_control().release_capacity(chunk.len());
            message.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await.map_err(transport)?;
        let status = trailers
            .as_ref()
            .and_then(Status::from_header_map)
            .ok_or_else(|| failure(Code::Internal, "the answer ended without a grpc-status"))?;
        if status.code() != Code::Ok {
            return Err(SubmitFailure::from_status(&status));
        }
        let answer = unframed(message.freeze())
            .and_then(|bytes| pb::SubmitResponse::decode(bytes).ok())
            .ok_or_else(SubmitFailure::malformed_receipt)?;
        answer
            .receipt
            .and_then(receipt_from_pb)
            .ok_or_else(SubmitFailure::malformed_receipt)
    }

    /// Sends the request's headers and its one frame before yielding, so the connection's task
    /// finds both queued and writes them together.
    async fn call(&mut self, frame: Bytes) -> Result<http::Response<h2::RecvStream>, h2::Error> {
        let request = http::Request::post(self.uri.clone())
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .body(())
            .map_err(|_| h2::Error::from(h2::Reason::INTERNAL_ERROR))?;
        futures::future::poll_fn(|cx| self.send.poll_ready(cx)).await?;
        let (response, mut stream) = self.send.send_request(request, false)?;
        stream.send_data(frame, true)?;
        response.await
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

fn failure(code: Code, message: impl Into<String>) -> SubmitFailure {
    SubmitFailure {
        code,
        message: message.into(),
        violations: Vec::new(),
        retryable: false,
        retry_after: None,
    }
}

/// A broken connection or a reset stream. Not retryable here, unlike tonic's UNAVAILABLE for
/// the same event: this client does not reconnect, so sending again on it cannot succeed, and
/// a benchmark whose server went away has failed.
fn transport(e: h2::Error) -> SubmitFailure {
    failure(
        Code::Unavailable,
        format!("connection to the aggregator: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::{framed, unframed};
    use crate::grpc::pb;
    use bytes::Bytes;
    use prost::Message;

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
}
