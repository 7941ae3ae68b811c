//! Raw gRPC: a codec and a tampering body that send bytes the generated client never would,
//! so the server can be shown undecodable messages and frames that lie.

use prost::bytes::{Buf, BufMut};
use std::task::{Context, Poll};
use tonic::Status;
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::Service;
use tonic::codegen::http::{self, HeaderValue, header::CONTENT_TYPE, uri::PathAndQuery};
use tonic::transport::Channel;

/// Sends and receives message bytes as they are: tonic frames them, nothing encodes them.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

/// A channel that rewrites what tonic sends: the content type, or the whole body (for
/// frames that lie about their length).
#[derive(Clone)]
pub struct Tamper {
    pub inner: Channel,
    pub content_type: Option<&'static str>,
    /// Replaces the framed body. A `String` because it is the one body type that can be
    /// built from outside tonic; the frames sent this way are ASCII.
    pub body: Option<String>,
}

impl Service<http::Request<Body>> for Tamper {
    type Response = http::Response<Body>;
    type Error = tonic::transport::Error;
    type Future = tonic::transport::channel::ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<http::Request<Body>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        if let Some(content_type) = self.content_type {
            request
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        if let Some(body) = self.body.clone() {
            request = request.map(|_| Body::new(body));
        }
        self.inner.call(request)
    }
}

/// One unary call with `message` as the request's bytes (framed by tonic unless `tamper`
/// replaces the body), answered with the response's bytes or the status.
pub async fn call(
    endpoint: &str,
    method: &'static str,
    message: Vec<u8>,
    content_type: Option<&'static str>,
    body: Option<String>,
) -> Result<Vec<u8>, Status> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
        .map_err(|e| Status::unknown(format!("endpoint: {e}")))?
        .connect()
        .await
        .map_err(|e| Status::unavailable(format!("connect: {e}")))?;
    let mut grpc = tonic::client::Grpc::new(Tamper {
        inner: channel,
        content_type,
        body,
    })
    .max_encoding_message_size(usize::MAX);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("not ready: {e}")))?;
    let path = PathAndQuery::from_static(method);
    grpc.unary(tonic::Request::new(message), path, RawCodec)
        .await
        .map(tonic::Response::into_inner)
}

/// Protobuf encoding by hand, for requests the generated types cannot express.
pub mod wire {
    use tonghop::domain::ReportDraft;

    pub fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    pub fn len_field(tag: u32, data: &[u8], out: &mut Vec<u8>) {
        varint(u64::from(tag << 3 | 2), out);
        varint(data.len() as u64, out);
        out.extend_from_slice(data);
    }

    fn double_field(tag: u32, value: f64, out: &mut Vec<u8>) {
        varint(u64::from(tag << 3 | 1), out);
        out.extend_from_slice(&value.to_le_bytes());
    }

    /// `tonghop.v1.Report`.
    pub fn report(d: &ReportDraft) -> Vec<u8> {
        let mut out = Vec::new();
        len_field(1, d.submission_id.as_bytes(), &mut out);
        len_field(2, d.unit_code.as_bytes(), &mut out);
        len_field(3, d.data_set.as_bytes(), &mut out);
        len_field(4, d.period.as_bytes(), &mut out);
        for v in &d.values {
            let mut value = Vec::new();
            len_field(1, v.indicator.as_bytes(), &mut value);
            double_field(2, v.value, &mut value);
            if !v.comment.is_empty() {
                len_field(3, v.comment.as_bytes(), &mut value);
            }
            len_field(5, &value, &mut out);
        }
        let mut narrative = Vec::new();
        len_field(1, d.narrative.results.as_bytes(), &mut narrative);
        len_field(2, d.narrative.shortcomings.as_bytes(), &mut narrative);
        len_field(3, d.narrative.proposals.as_bytes(), &mut narrative);
        len_field(6, &narrative, &mut out);
        len_field(7, d.prepared_by.as_bytes(), &mut out);
        out
    }

    /// `tonghop.v1.SubmitRequest` around a report's bytes.
    pub fn submit_request(report: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        len_field(1, report, &mut out);
        out
    }

    /// A gRPC length-prefixed frame as text: flag byte, length (big endian), bytes. Only
    /// for ASCII contents and lengths whose bytes are ASCII (see `Tamper::body`).
    pub fn ascii_frame(flag: u8, declared_len: u32, contents: &[u8]) -> String {
        let mut frame = vec![flag];
        frame.extend_from_slice(&declared_len.to_be_bytes());
        frame.extend_from_slice(contents);
        String::from_utf8(frame).expect("an ASCII frame")
    }
}
