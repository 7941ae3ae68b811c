//! Hostile input over the real gRPC socket and a real SQLite file: bytes that are not a
//! protobuf message, frames that lie about their length, messages over the size limit,
//! megabyte strings, control characters and look-alike letters, SQL metacharacters and path
//! separators, in every string field a report has.
//!
//! For each input the aggregator must answer with a clear error (the status code asserted, the
//! field named), stay up (it answers a valid report afterwards, on a new connection, and after
//! the last case of a test still stores a new one) and leave the store exactly as it was (same
//! dump, same change counter, same bytes in the SQLite file and its WAL). Free text is the exception that proves the rule: quotes, semicolons and
//! `--` in a narrative are legitimate, so they are accepted and must come back verbatim.
//!
//! `validation_e2e.rs` breaks each validation rule once; this file sends what an attacker or a
//! broken client would send, and checks the answers as a whole.

mod common;

use common::*;
use std::time::{Duration, Instant};
use tonghop::config::Settings;
use tonghop::domain::{DraftValue, ReceiptStatus, ReportDraft, Violation};
use tonghop::grpc::client::SubmitFailure;
use tonic::Code;

/// The unit and period hostile reports claim to be for (a district, a closed month).
const UNIT: &str = "BS02";
const PERIOD: &str = "201909";

/// A whole rejection as the client sees it (message and every listed violation) stays under
/// this, whatever the size of the input: nothing is echoed back in full.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// Time allowed for one call; a server that hangs fails the test instead of stalling it.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Time allowed for one test function's cases as a whole.
const TEST_BUDGET: Duration = Duration::from_secs(120);

/// One megabyte, the size of the strings sent in every field.
const MEGABYTE: usize = 1_000_000;

// ------------------------------------------------------------------------------------------
// The target: an aggregator, the state its store must stay in, and the checks after each case
// ------------------------------------------------------------------------------------------

#[derive(Debug, PartialEq)]
struct StoreState {
    dump: String,
    file_digest: String,
    change_counter: i64,
}

async fn store_state(app: &TestApp) -> StoreState {
    StoreState {
        dump: app.store.dump().await.expect("dump the store"),
        file_digest: app
            .db
            .sqlite_file_digest()
            .expect("the SQLite backend has a database file"),
        change_counter: app
            .store
            .change_counter()
            .await
            .expect("read the change counter"),
    }
}

fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("  {} [{}] {}", v.field, v.rule, shown(&v.description)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A string cut for a failure message (a failing case must not print a megabyte either).
fn shown(text: &str) -> String {
    if text.len() <= 300 {
        return format!("{text:?}");
    }
    let head: String = text.chars().take(200).collect();
    format!("{head:?}... ({} bytes)", text.len())
}

/// Bytes of a rejection as the client receives it.
fn answer_bytes(failure: &SubmitFailure) -> usize {
    failure.message.len()
        + failure
            .violations
            .iter()
            .map(|v| v.field.len() + v.rule.len() + v.description.len())
            .sum::<usize>()
}

/// The report every target stores first, and sends again as a liveness probe.
const SEED_ID: &str = "seed:BS01:201909";

fn seed_report() -> ReportDraft {
    valid_report(SEED_ID, "BS01", PERIOD)
}

/// An aggregator under attack. Every problem found is collected, so one run reports all the
/// cases that fail, not only the first.
struct Target {
    app: TestApp,
    state: StoreState,
    problems: Vec<String>,
    started: Instant,
}

impl Target {
    async fn start() -> Target {
        Target::on(spawn_app(Backend::Sqlite).await).await
    }

    /// Stores one valid report first, so comparisons are made on a store that is not empty.
    async fn on(app: TestApp) -> Target {
        let mut client = app.client().await;
        let receipt = client
            .submit(&seed_report())
            .await
            .expect("the seed report is valid and accepted");
        assert_eq!(receipt.status, ReceiptStatus::New);
        let state = store_state(&app).await;
        assert_eq!(state.change_counter, 1);
        Target {
            app,
            state,
            problems: Vec::new(),
            started: Instant::now(),
        }
    }

    fn problem(&mut self, case: &str, what: impl std::fmt::Display) {
        self.problems.push(format!("{case}: {what}"));
    }

    /// Stops a test that runs far longer than it should (a slow server, not a slow machine).
    fn within_budget(&self, case: &str) {
        assert!(
            self.started.elapsed() < TEST_BUDGET,
            "over the time budget of {TEST_BUDGET:?} at {case}; problems so far:\n{}",
            self.problems.join("\n")
        );
    }

    async fn submit(&mut self, draft: &ReportDraft) -> Result<tonghop::domain::Receipt, String> {
        let mut client = self.app.client().await;
        match tokio::time::timeout(CALL_TIMEOUT, client.submit(draft)).await {
            Err(_) => Err(format!("no answer within {CALL_TIMEOUT:?}")),
            Ok(Ok(receipt)) => Ok(receipt),
            Ok(Err(failure)) => Err(format!("{failure:?}")),
        }
    }

    /// After a hostile input: the store is exactly as it was, and the server still answers a
    /// valid report on a new connection. The probe is the seed report sent again, which the
    /// server must recognise as a duplicate: a full round trip through decoding, validation
    /// and the store that writes nothing, so every case is judged against the same state.
    async fn unchanged_and_alive(&mut self, case: &str) {
        let now = store_state(&self.app).await;
        if now != self.state {
            if now.change_counter != self.state.change_counter {
                let (before, after) = (self.state.change_counter, now.change_counter);
                self.problem(
                    case,
                    format!("change counter moved from {before} to {after}"),
                );
            }
            if now.dump != self.state.dump {
                let after = shown(&now.dump);
                self.problem(case, format!("store dump changed; now:\n{after}"));
            }
            if now.file_digest != self.state.file_digest {
                self.problem(case, "SQLite file bytes changed");
            }
            // Judge the next case on its own.
            self.state = now;
        }
        match self.submit(&seed_report()).await {
            Ok(receipt) if (receipt.status, receipt.revision) == (ReceiptStatus::Duplicate, 1) => {}
            Ok(receipt) => self.problem(case, format!("probe answered as {receipt:?}")),
            Err(e) => self.problem(case, format!("server refuses a valid report after it: {e}")),
        }
        self.within_budget(case);
    }

    /// Sends `draft`, which must be refused as INVALID_ARGUMENT with a violation of `rule` on
    /// `field` whose description mentions each of `mentions`, in an answer of bounded size;
    /// then checks the store and the server.
    async fn refused(
        &mut self,
        case: &str,
        draft: &ReportDraft,
        field: &str,
        rule: &str,
        mentions: &[&str],
    ) {
        let mut client = self.app.client().await;
        match tokio::time::timeout(CALL_TIMEOUT, client.submit(draft)).await {
            Err(_) => self.problem(case, format!("no answer within {CALL_TIMEOUT:?}")),
            Ok(Ok(receipt)) => self.problem(case, format!("accepted: {receipt:?}")),
            Ok(Err(failure)) => {
                for problem in check_refusal(&failure, field, rule, mentions) {
                    self.problem(case, problem);
                }
            }
        }
        self.unchanged_and_alive(case).await;
    }

    /// After all the cases: a new report is still written (every table is still there), and
    /// what was stored before is still in the dump.
    async fn finish(mut self) {
        let before = store_state(&self.app).await;
        let last = valid_report("alive:after-all", "BS01", "201910");
        match self.submit(&last).await {
            Ok(receipt) if receipt.status == ReceiptStatus::New => {}
            Ok(receipt) => self.problem("after all cases", format!("answered {receipt:?}")),
            Err(e) => self.problem("after all cases", format!("a new report is refused: {e}")),
        }
        let after = store_state(&self.app).await;
        if after.change_counter != before.change_counter + 1 {
            let problem = format!("{} revisions after one write", after.change_counter);
            self.problem("after all cases", problem);
        }
        for id in [SEED_ID, "alive:after-all"] {
            if !after.dump.contains(id) {
                self.problem("after all cases", format!("{id} missing from the dump"));
            }
        }
        let Target { app, problems, .. } = self;
        app.stop().await;
        assert!(
            problems.is_empty(),
            "{} problem(s):\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
}

/// Every way `failure` differs from a clear refusal of `rule` on `field`.
fn check_refusal(
    failure: &SubmitFailure,
    field: &str,
    rule: &str,
    mentions: &[&str],
) -> Vec<String> {
    let mut problems = Vec::new();
    if failure.code != Code::InvalidArgument {
        problems.push(format!(
            "code {:?} instead of InvalidArgument: {}",
            failure.code,
            shown(&failure.message)
        ));
        return problems;
    }
    if failure.retryable {
        problems.push("a refused report is marked retryable".into());
    }
    match failure
        .violations
        .iter()
        .find(|v| v.field == field && v.rule == rule)
    {
        None => problems.push(format!(
            "no violation {rule} on {field}; got:\n{}",
            describe(&failure.violations)
        )),
        Some(v) => {
            for mention in mentions {
                if !v.description.contains(mention) {
                    problems.push(format!(
                        "{field} [{rule}] does not mention {mention:?}: {}",
                        shown(&v.description)
                    ));
                }
            }
        }
    }
    let size = answer_bytes(failure);
    if size > MAX_ANSWER_BYTES {
        problems.push(format!(
            "the refusal is {size} bytes (over {MAX_ANSWER_BYTES}): the input is echoed back"
        ));
    }
    problems
}

/// The valid report every case starts from, under its own submission id.
fn base(n: usize) -> ReportDraft {
    valid_report(&format!("hostile:{n}"), UNIT, PERIOD)
}

/// Where a string can go in a report, and what the validator calls that place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    SubmissionId,
    UnitCode,
    DataSet,
    Period,
    /// The indicator of the first value.
    Indicator,
    Results,
    Shortcomings,
    Proposals,
    PreparedBy,
    /// The comment of the first value.
    Comment,
}

const CODE_SLOTS: [Slot; 5] = [
    Slot::SubmissionId,
    Slot::UnitCode,
    Slot::DataSet,
    Slot::Period,
    Slot::Indicator,
];

const TEXT_SLOTS: [Slot; 5] = [
    Slot::Results,
    Slot::Shortcomings,
    Slot::Proposals,
    Slot::PreparedBy,
    Slot::Comment,
];

impl Slot {
    fn field(self) -> &'static str {
        match self {
            Slot::SubmissionId => "submission_id",
            Slot::UnitCode => "unit_code",
            Slot::DataSet => "data_set",
            Slot::Period => "period",
            Slot::Indicator => "values[0].indicator",
            Slot::Results => "narrative.results",
            Slot::Shortcomings => "narrative.shortcomings",
            Slot::Proposals => "narrative.proposals",
            Slot::PreparedBy => "prepared_by",
            Slot::Comment => "values[0].comment",
        }
    }

    /// The rule a code that does not even parse breaks.
    fn malformed_rule(self) -> &'static str {
        match self {
            Slot::Period => "period_malformed",
            _ => "invalid_code",
        }
    }

    /// The valid value the slot holds in `base`.
    fn legit(self) -> &'static str {
        match self {
            Slot::SubmissionId => "hostile:BS02:201909",
            Slot::UnitCode => UNIT,
            Slot::DataSet => "DVCQ_THANG",
            Slot::Period => PERIOD,
            Slot::Indicator => "tiep_cong_dan",
            Slot::Results => "Tổ chức 02 buổi tiếp công dân định kỳ.",
            Slot::Shortcomings => "Một số hồ sơ còn trễ hạn.",
            Slot::Proposals => "Đề nghị tăng cường tập huấn.",
            Slot::PreparedBy => "Nguyễn Văn An",
            Slot::Comment => "Số liệu đã đối chiếu.",
        }
    }

    fn set(self, draft: &mut ReportDraft, value: String) {
        match self {
            Slot::SubmissionId => draft.submission_id = value,
            Slot::UnitCode => draft.unit_code = value,
            Slot::DataSet => draft.data_set = value,
            Slot::Period => draft.period = value,
            Slot::Indicator => draft.values[0].indicator = value,
            Slot::Results => draft.narrative.results = value,
            Slot::Shortcomings => draft.narrative.shortcomings = value,
            Slot::Proposals => draft.narrative.proposals = value,
            Slot::PreparedBy => draft.prepared_by = value,
            Slot::Comment => draft.values[0].comment = value,
        }
    }

    fn draft(self, n: usize, value: String) -> ReportDraft {
        let mut draft = base(n);
        assert_eq!(draft.values[0].indicator, "tiep_cong_dan");
        self.set(&mut draft, value);
        draft
    }
}

// ------------------------------------------------------------------------------------------
// Raw gRPC: bytes that the generated client would never send
// ------------------------------------------------------------------------------------------

mod raw {
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
}

// ------------------------------------------------------------------------------------------
// Bytes that are not a report
// ------------------------------------------------------------------------------------------

const SUBMIT: &str = "/tonghop.v1.IngestService/Submit";
const SUBMIT_BATCH: &str = "/tonghop.v1.IngestService/SubmitBatch";

/// A raw call that must fail with one of `codes` and a message mentioning each of `mentions`.
#[allow(clippy::too_many_arguments)]
async fn raw_refused(
    target: &mut Target,
    case: &str,
    method: &'static str,
    message: Vec<u8>,
    content_type: Option<&'static str>,
    body: Option<String>,
    codes: &[Code],
    mentions: &[&str],
) {
    let endpoint = target.app.endpoint.clone();
    let call = raw::call(&endpoint, method, message, content_type, body);
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Err(_) => target.problem(case, format!("no answer within {CALL_TIMEOUT:?}")),
        Ok(Ok(bytes)) => target.problem(case, format!("answered OK with {} bytes", bytes.len())),
        Ok(Err(status)) => {
            if !codes.contains(&status.code()) {
                let message = shown(status.message());
                target.problem(
                    case,
                    format!(
                        "code {:?} (expected one of {codes:?}): {message}",
                        status.code()
                    ),
                );
            }
            for mention in mentions {
                if !status.message().contains(mention) {
                    let message = shown(status.message());
                    target.problem(
                        case,
                        format!("message does not mention {mention:?}: {message}"),
                    );
                }
            }
        }
    }
    target.unchanged_and_alive(case).await;
}

/// The raw path itself works: a valid report, encoded by hand, is stored. Without this the
/// refusals below could come from a broken test client rather than from the server.
async fn raw_positive_control(target: &mut Target) {
    let report = raw::wire::report(&valid_report("raw:BS03:201909", "BS03", PERIOD));
    let request = raw::wire::submit_request(&report);
    let answer = raw::call(&target.app.endpoint, SUBMIT, request, None, None).await;
    let receipt = answer.unwrap_or_else(|s| panic!("a valid hand-encoded report: {s:?}"));
    assert!(!receipt.is_empty(), "a receipt comes back");
    let stored = target
        .app
        .store
        .latest("BS03", "DVCQ_THANG", PERIOD)
        .await
        .expect("read BS03")
        .expect("the hand-encoded report is stored");
    assert_eq!(stored.report.submission_id.as_str(), "raw:BS03:201909");
    assert_eq!(stored.report.prepared_by, "Nguyễn Văn An");
    target.state = store_state(&target.app).await;
}

#[tokio::test]
async fn undecodable_protobuf_is_refused_and_changes_nothing() {
    let mut target = Target::start().await;
    raw_positive_control(&mut target).await;
    // Decoding errors are INTERNAL in gRPC's table (tonic-prost maps them so); INVALID_ARGUMENT
    // would do as well. Either way the message says decoding failed, and where.
    let decode = [Code::Internal, Code::InvalidArgument];
    let cases: Vec<(&str, &'static str, Vec<u8>, Vec<&str>)> = vec![
        (
            "64 bytes 0xFF",
            SUBMIT,
            vec![0xff; 64],
            vec!["decode", "varint"],
        ),
        (
            "wire type 7",
            SUBMIT,
            vec![0x0f, 0x00],
            vec!["decode", "wire type"],
        ),
        (
            // Field 15 (unknown, so skipped, but its varint must still be read).
            "varint of eleven bytes",
            SUBMIT,
            [vec![0x78], vec![0xff; 10], vec![0x01]].concat(),
            vec!["decode", "varint"],
        ),
        (
            "report longer than the message",
            SUBMIT,
            vec![0x0a, 0xff, 0xff, 0xff, 0x0f, 0x00],
            vec!["decode", "SubmitRequest.report"],
        ),
        (
            "unit code that is not UTF-8",
            SUBMIT,
            vec![0x0a, 0x04, 0x12, 0x02, 0xff, 0xfe],
            vec!["decode", "unit_code", "UTF-8"],
        ),
        (
            "narrative text that is not UTF-8",
            SUBMIT,
            vec![0x0a, 0x06, 0x32, 0x04, 0x0a, 0x02, 0xc3, 0x28],
            vec!["decode", "Narrative.results"],
        ),
        (
            "unit code sent as a number",
            SUBMIT,
            vec![0x0a, 0x02, 0x10, 0x01],
            vec!["decode", "unit_code"],
        ),
        (
            "garbage inside a value",
            SUBMIT,
            vec![0x0a, 0x03, 0x2a, 0x01, 0xff],
            vec!["decode", "Report.values"],
        ),
        (
            "garbage batch",
            SUBMIT_BATCH,
            vec![0x0a, 0x05, 0xff, 0xff, 0xff, 0xff, 0xff],
            vec!["decode", "SubmitBatchRequest.reports"],
        ),
    ];
    for (case, method, bytes, mentions) in cases {
        raw_refused(
            &mut target,
            case,
            method,
            bytes,
            None,
            None,
            &decode,
            &mentions,
        )
        .await;
    }
    target.finish().await;
}

#[tokio::test]
async fn frames_that_lie_about_their_length_are_refused() {
    use raw::wire::ascii_frame;
    let mut target = Target::start().await;
    let limit = Settings::default().max_message_bytes.to_string();
    // (case, body, codes, mentions): each body replaces the whole framed request.
    let cases: Vec<(&str, String, Vec<Code>, Vec<&str>)> = vec![
        (
            "frame declaring 100 bytes, carrying 2",
            ascii_frame(0, 100, &[0x0a, 0x00]),
            vec![Code::Internal],
            vec!["EOF"],
        ),
        (
            "frame header cut after 3 bytes",
            "\0\0\0".into(),
            vec![Code::Internal],
            vec!["EOF"],
        ),
        (
            "frame declaring 2 GiB",
            ascii_frame(0, 0x7f7f_7f7f, &[0x0a, 0x00]),
            vec![Code::OutOfRange, Code::ResourceExhausted],
            vec!["2139062143", &limit],
        ),
        (
            "compressed flag with no compression agreed",
            ascii_frame(1, 2, &[0x0a, 0x00]),
            vec![Code::Internal, Code::Unimplemented, Code::InvalidArgument],
            vec!["compress"],
        ),
        (
            "flag byte 7",
            ascii_frame(7, 2, &[0x0a, 0x00]),
            vec![Code::Internal],
            vec!["flag"],
        ),
        (
            "no frame at all",
            String::new(),
            vec![Code::Internal, Code::InvalidArgument],
            vec!["message"],
        ),
    ];
    for (case, body, codes, mentions) in cases {
        raw_refused(
            &mut target,
            case,
            SUBMIT,
            Vec::new(),
            None,
            Some(body),
            &codes,
            &mentions,
        )
        .await;
    }
    target.finish().await;
}

#[tokio::test]
async fn requests_that_are_not_grpc_are_refused() {
    let mut target = Target::start().await;
    // JSON, said to be JSON: refused before any handler reads it.
    raw_refused(
        &mut target,
        "JSON body with a JSON content type",
        SUBMIT,
        Vec::new(),
        Some("application/json"),
        Some(r#"{"report":{"unit_code":"BS02","data_set":"DVCQ_THANG"}}"#.into()),
        &[Code::InvalidArgument],
        &["content-type"],
    )
    .await;
    // A method that does not exist, with a valid-looking message.
    let report = raw::wire::report(&base(1));
    raw_refused(
        &mut target,
        "unknown method",
        "/tonghop.v1.IngestService/DropTables",
        raw::wire::submit_request(&report),
        None,
        None,
        &[Code::Unimplemented],
        &[],
    )
    .await;
    raw_refused(
        &mut target,
        "unknown service",
        "/tonghop.v1.AdminService/Submit",
        raw::wire::submit_request(&report),
        None,
        None,
        &[Code::Unimplemented],
        &[],
    )
    .await;
    target.finish().await;
}

/// gRPC over HTTP/2 says a server should refuse a request whose content type is not
/// `application/grpc...` (HTTP 415). A complete, valid report framed as gRPC but labelled
/// `text/plain` is such a request: whatever reads it cannot be a gRPC client. (Found by this
/// suite: tonic does not check the content type, and the report used to be stored.)
#[tokio::test]
async fn a_valid_report_with_a_non_grpc_content_type_is_refused() {
    let mut target = Target::start().await;
    let report = raw::wire::report(&valid_report("text-plain:BS04:201909", "BS04", PERIOD));
    raw_refused(
        &mut target,
        "valid frame labelled text/plain",
        SUBMIT,
        raw::wire::submit_request(&report),
        Some("text/plain"),
        None,
        &[Code::InvalidArgument],
        &["content-type"],
    )
    .await;
    target.finish().await;
}

// ------------------------------------------------------------------------------------------
// Size
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn messages_over_the_size_limit_are_refused_before_decoding() {
    let limit = 16 * 1024;
    let app = spawn_app_with(
        Backend::Sqlite,
        |s| Settings {
            max_message_bytes: limit,
            ..s
        },
        None,
    )
    .await;
    let mut target = Target::on(app).await;
    let mentions = [limit.to_string()];
    let over = [Code::OutOfRange, Code::ResourceExhausted];

    let mut client = target.app.client().await;
    let mut big = base(1);
    big.prepared_by = "ệ".repeat(limit / 2);
    let answer = tokio::time::timeout(CALL_TIMEOUT, client.submit(&big)).await;
    check_transport_refusal(
        &mut target,
        "one report over the limit",
        answer,
        &over,
        &mentions,
    );
    target
        .unchanged_and_alive("one report over the limit")
        .await;

    // Thirty small valid reports, each well under the limit, together over it.
    let batch: Vec<ReportDraft> = (0..30)
        .map(|n| {
            valid_report(
                &format!("batch:{n}"),
                UNIT,
                &format!("2019{:02}", n % 9 + 1),
            )
        })
        .collect();
    let answer = tokio::time::timeout(CALL_TIMEOUT, client.submit_batch(&batch)).await;
    check_transport_refusal(
        &mut target,
        "batch over the limit",
        answer,
        &over,
        &mentions,
    );
    target.unchanged_and_alive("batch over the limit").await;
    target.finish().await;
}

fn check_transport_refusal<T: std::fmt::Debug>(
    target: &mut Target,
    case: &str,
    answer: Result<Result<T, SubmitFailure>, tokio::time::error::Elapsed>,
    codes: &[Code],
    mentions: &[String],
) {
    match answer {
        Err(_) => target.problem(case, format!("no answer within {CALL_TIMEOUT:?}")),
        Ok(Ok(ok)) => target.problem(case, format!("accepted: {ok:?}")),
        Ok(Err(failure)) => {
            if !codes.contains(&failure.code) {
                target.problem(
                    case,
                    format!("code {:?}: {}", failure.code, failure.message),
                );
            }
            for mention in mentions {
                if !failure.message.contains(mention.as_str()) {
                    target.problem(case, format!("{mention:?} not in {:?}", failure.message));
                }
            }
        }
    }
}

/// A megabyte in each string field, under the 4 MiB message limit: refused by validation,
/// naming the field, and echoing the value shortened rather than sending a megabyte back.
#[tokio::test]
async fn megabyte_strings_in_every_field_are_refused_with_the_value_shortened() {
    let mut target = Target::start().await;
    let code = "A".repeat(MEGABYTE);
    let text = "ệ".repeat(MEGABYTE / 3);
    let text_chars = (MEGABYTE / 3).to_string();
    let code_chars = MEGABYTE.to_string();
    for (n, slot) in CODE_SLOTS.into_iter().chain(TEXT_SLOTS).enumerate() {
        if slot == Slot::Period {
            // The period has a test of its own, below.
            continue;
        }
        let case = format!("1 MB in {}", slot.field());
        let (value, rule, mentions) = if CODE_SLOTS.contains(&slot) {
            (code.clone(), "invalid_code", [code_chars.as_str(), "… ("])
        } else {
            (text.clone(), "text_too_long", [text_chars.as_str(), "… ("])
        };
        let draft = slot.draft(n, value);
        target
            .refused(&case, &draft, slot.field(), rule, &mentions)
            .await;
    }
    target.finish().await;
}

/// A malformed period used to be quoted in full in its violation's description, so a 1 MB
/// period came back as a 1 MB grpc-message that the client's HTTP/2 layer refused (found by
/// this suite).
#[tokio::test]
async fn a_megabyte_period_is_refused_with_the_value_shortened() {
    let mut target = Target::start().await;
    let draft = Slot::Period.draft(1, "A".repeat(MEGABYTE));
    target
        .refused(
            "1 MB in period",
            &draft,
            "period",
            "period_malformed",
            &["… ("],
        )
        .await;
    target.finish().await;
}

/// 400 unknown indicators: every one is a violation, 50 are listed (the trailer carrying them
/// has a size limit), one more entry says how many were left out, and the message gives the
/// full count.
#[tokio::test]
async fn many_violations_are_listed_up_to_the_cap_with_the_full_count() {
    let mut target = Target::start().await;
    let mut draft = base(1);
    for n in 0..400 {
        draft.values.push(DraftValue {
            indicator: format!("chi_tieu_khong_co_{n}"),
            value: 1.0,
            comment: String::new(),
        });
    }
    let case = "400 unknown indicators";
    let mut client = target.app.client().await;
    let failure = client.submit(&draft).await.expect_err("refused");
    assert_eq!(
        failure.code,
        Code::InvalidArgument,
        "{}",
        shown(&failure.message)
    );
    assert!(
        failure.message.contains("400 problem(s)"),
        "the message gives the full count: {}",
        failure.message
    );
    assert!(
        failure.violations.len() <= 51,
        "{} violations listed",
        failure.violations.len()
    );
    let last = failure.violations.last().expect("violations listed");
    assert_eq!(last.rule, "more_violations", "{last:?}");
    assert!(last.description.starts_with("350 more"), "{last:?}");
    let listed = &failure.violations[..failure.violations.len() - 1];
    assert_eq!(listed.len(), 50);
    assert!(
        listed.iter().all(|v| v.rule == "unknown_indicator"),
        "{}",
        describe(listed)
    );
    assert!(answer_bytes(&failure) <= MAX_ANSWER_BYTES);
    target.unchanged_and_alive(case).await;
    target.finish().await;
}

/// The same cap must hold in bytes: 400 indicator codes made of 100 zero-width spaces each are
/// refused as too long, and each listed violation echoes 80 of them, escaped by `{:?}` into
/// `\u{200b}` (8 bytes each). Fifty such entries are about 36 KB, 48 KB once base64-encoded in
/// the `grpc-status-details-bin` trailer: over the 16 KiB header list the client accepts. Capped
/// by count only, the client used to see a transport error instead of INVALID_ARGUMENT and its
/// violations (found by this suite).
#[tokio::test]
async fn many_violations_with_long_escaped_values_still_arrive_as_invalid_argument() {
    let mut target = Target::start().await;
    let mut draft = base(1);
    for n in 0..400 {
        draft.values.push(DraftValue {
            indicator: format!("{n}{}", "\u{200b}".repeat(100)),
            value: 1.0,
            comment: String::new(),
        });
    }
    let field = format!("values[{}].indicator", base(1).values.len());
    target
        .refused(
            "400 codes of zero-width spaces",
            &draft,
            &field,
            "invalid_code",
            &["characters long"],
        )
        .await;
    target.finish().await;
}

// ------------------------------------------------------------------------------------------
// Characters
// ------------------------------------------------------------------------------------------

/// A Cyrillic letter that looks like `c`, if there is one (digits: a letter that looks like it).
fn look_alike(c: char) -> Option<char> {
    Some(match c {
        'A' => 'А',
        'B' => 'В',
        'C' => 'С',
        'E' => 'Е',
        'H' => 'Н',
        'K' => 'К',
        'M' => 'М',
        'O' | '0' => 'О',
        'P' => 'Р',
        'T' => 'Т',
        'X' => 'Х',
        'a' => 'а',
        'c' => 'с',
        'e' => 'е',
        'o' => 'о',
        'p' => 'р',
        'x' => 'х',
        'y' => 'у',
        '3' => 'З',
        _ => return None,
    })
}

/// Ways of making a valid code look the same (or nearly) while not being it.
fn disguises(legit: &str) -> Vec<(&'static str, String)> {
    let mut first = legit.chars();
    let head = first.next().expect("a code is not empty");
    let tail: String = first.collect();
    let mut swapped = false;
    let cyrillic: String = legit
        .chars()
        .map(|c| match look_alike(c) {
            Some(twin) if !swapped => {
                swapped = true;
                twin
            }
            _ => c,
        })
        .collect();
    assert!(swapped, "{legit} has a letter with a Cyrillic twin");
    let full_width: String = legit
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                char::from_u32(u32::from(c) + 0xFEE0).expect("full-width form")
            } else {
                c
            }
        })
        .collect();
    vec![
        ("NUL at the end", format!("{legit}\u{0}")),
        ("escape sequence", format!("{legit}\u{1b}[2J")),
        ("right-to-left override", format!("\u{202e}{legit}")),
        ("zero-width space", format!("{head}\u{200b}{tail}")),
        ("Cyrillic look-alike", cyrillic),
        ("full-width letters and digits", full_width),
        ("combining acute accent", format!("{legit}\u{0301}")),
        ("decomposed circumflex", format!("{head}\u{0302}{tail}")),
    ]
}

#[tokio::test]
async fn control_and_look_alike_characters_in_codes_are_refused() {
    let mut target = Target::start().await;
    let mut n = 0;
    for slot in CODE_SLOTS {
        for (how, value) in disguises(slot.legit()) {
            n += 1;
            let case = format!("{} with {how}: {value:?}", slot.field());
            let mentions: &[&str] = match slot {
                Slot::Period => &["is not a period identifier"],
                _ => &["contains", "only letters A-Z"],
            };
            let draft = slot.draft(n, value);
            target
                .refused(&case, &draft, slot.field(), slot.malformed_rule(), mentions)
                .await;
        }
    }
    target.finish().await;
}

#[tokio::test]
async fn control_characters_in_free_text_are_refused() {
    let mut target = Target::start().await;
    let mut n = 0;
    for slot in TEXT_SLOTS {
        for (c, name) in [
            ('\u{0}', "U+0000"),
            ('\u{1b}', "U+001B"),
            ('\u{7f}', "U+007F"),
        ] {
            n += 1;
            let case = format!("{} with {name}", slot.field());
            let value = format!("{}{c}", slot.legit());
            let draft = slot.draft(n, value);
            target
                .refused(&case, &draft, slot.field(), "control_character", &[name])
                .await;
        }
    }
    target.finish().await;
}

/// Bidirectional controls (U+202A-U+202E, U+2066-U+2069) reorder what a reader sees: a
/// narrative or a name carrying one prints differently from what is stored ("Trojan Source"),
/// and a log line carrying one is forged as surely as with an escape sequence. (They are
/// Unicode format characters, not control characters, and used to be accepted: found by this
/// suite.)
#[tokio::test]
async fn bidirectional_controls_in_free_text_are_refused() {
    let mut target = Target::start().await;
    let mut n = 0;
    for slot in TEXT_SLOTS {
        for (c, name) in [('\u{202e}', "U+202E"), ('\u{2066}', "U+2066")] {
            n += 1;
            let case = format!("{} with {name}", slot.field());
            let draft = slot.draft(n, format!("{}{c}", slot.legit()));
            target
                .refused(&case, &draft, slot.field(), "control_character", &[name])
                .await;
        }
    }
    target.finish().await;
}

/// Positive control: Vietnamese as clerks type it is accepted and stored byte for byte, in
/// precomposed (NFC) and decomposed (NFD, combining marks) form alike, and so is a zero-width
/// space pasted from a web page (an invisible format character, not a control character).
#[tokio::test]
async fn vietnamese_text_is_stored_verbatim_precomposed_or_decomposed() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut client = app.client().await;
    let mut draft = valid_report("viet:BS06:201909", "BS06", PERIOD);
    draft.narrative.results = "Tiếp nhận 2.634 hồ sơ; giải quyết đúng hạn 97,1%.".into();
    // "Nguyễn" and "Đề nghị" with their marks as separate combining characters.
    draft.narrative.shortcomings =
        "Nguye\u{0302}\u{0303}n Thi\u{0323} Ánh Tuye\u{0302}\u{0301}t".into();
    draft.narrative.proposals = "Đe\u{0302}\u{0300} nghi\u{0323}\u{200b} tăng cường.".into();
    draft.prepared_by = "Trương Thị Ngọc Ánh — Phó Trưởng phòng".into();
    draft.values[0].comment = "Số liệu 6 tháng: ước tính; «tạm»".into();
    let receipt = client
        .submit(&draft)
        .await
        .expect("Vietnamese text is valid");
    assert_eq!(receipt.status, ReceiptStatus::New);
    let stored = app
        .store
        .latest("BS06", "DVCQ_THANG", PERIOD)
        .await
        .expect("read BS06")
        .expect("stored");
    assert_eq!(stored.report.narrative, draft.narrative, "byte for byte");
    assert_eq!(stored.report.prepared_by, draft.prepared_by);
    let comment = stored
        .report
        .values
        .iter()
        .find(|v| v.indicator.as_str() == draft.values[0].indicator)
        .and_then(|v| v.comment.clone());
    assert_eq!(comment.as_deref(), Some(draft.values[0].comment.as_str()));
    app.stop().await;
}

// ------------------------------------------------------------------------------------------
// SQL metacharacters and path separators
// ------------------------------------------------------------------------------------------

const SQL: [&str; 6] = [
    "'; DROP TABLE submissions; --",
    "\" OR 1=1 --",
    "' OR '1'='1",
    "BS02\\",
    "BS02%",
    "1; DELETE FROM revisions",
];

#[tokio::test]
async fn sql_metacharacters_in_codes_are_refused() {
    let mut target = Target::start().await;
    let mut n = 0;
    for slot in CODE_SLOTS {
        for payload in SQL {
            n += 1;
            let case = format!("{} = {payload:?}", slot.field());
            let draft = slot.draft(n, payload.into());
            let mentions: &[&str] = match slot {
                Slot::Period => &[],
                _ => &["contains"],
            };
            target
                .refused(&case, &draft, slot.field(), slot.malformed_rule(), mentions)
                .await;
        }
    }
    // `_` is a LIKE wildcard but a legitimate character of a code: it passes the syntax check
    // and must then match nothing but itself.
    let unknown = [
        (Slot::UnitCode, "unknown_unit"),
        (Slot::DataSet, "unknown_data_set"),
        (Slot::Indicator, "unknown_indicator"),
        (Slot::Period, "period_malformed"),
    ];
    for (slot, rule) in unknown {
        n += 1;
        let case = format!("{} = \"_\"", slot.field());
        target
            .refused(&case, &slot.draft(n, "_".into()), slot.field(), rule, &[])
            .await;
    }
    target.finish().await;
}

/// A submission id `_` is valid, and must not be taken for another one-character id by a
/// lookup that treats it as a wildcard: `x` and `_` with different contents are two reports.
#[tokio::test]
async fn a_wildcard_submission_id_matches_only_itself() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut client = app.client().await;
    let first = client
        .submit(&valid_report("x", "BS07", PERIOD))
        .await
        .expect("id x");
    assert_eq!(first.status, ReceiptStatus::New);
    let mut other = valid_report("_", "BS07", PERIOD);
    set_value(&mut other, "tiep_cong_dan", 3.0);
    let second = client.submit(&other).await.expect("id _ is another report");
    assert_eq!(
        (second.status, second.revision),
        (ReceiptStatus::Revision, 2)
    );
    assert_eq!(second.submission_id.as_str(), "_");
    let third = client
        .submit(&valid_report("%", "BS07", PERIOD))
        .await
        .expect_err("% is not a code character");
    assert_eq!(third.code, Code::InvalidArgument);
    let revisions = app
        .store
        .revisions("BS07", "DVCQ_THANG", PERIOD)
        .await
        .expect("read BS07");
    let ids: Vec<&str> = revisions
        .iter()
        .map(|r| r.report.submission_id.as_str())
        .collect();
    assert_eq!(ids, ["x", "_"]);
    app.stop().await;
}

/// Free text may say anything, quotes and semicolons included: accepted and stored verbatim,
/// which shows the SQL is parameterised. Afterwards every table is still there: earlier
/// reports are in the dump, and a further report is stored.
#[tokio::test]
async fn sql_metacharacters_in_free_text_are_stored_verbatim() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut client = app.client().await;
    let payloads = [
        SQL[0],
        SQL[1],
        SQL[2],
        "C:\\Temp\\báo cáo\\",
        "100% hồ sơ; tỷ lệ_đúng_hạn",
        "Robert'); DROP TABLE revisions;--",
        "$1 :name ? @p0 \\x27 /* */",
    ];
    for (n, payload) in payloads.iter().enumerate() {
        let period = format!("2019{:02}", n + 1);
        let mut draft = valid_report(&format!("sql-text:{n}"), "BS08", &period);
        for slot in TEXT_SLOTS {
            slot.set(&mut draft, format!("{payload} [{}]", slot.field()));
        }
        let receipt = client
            .submit(&draft)
            .await
            .unwrap_or_else(|e| panic!("free text {payload:?} is valid: {e}"));
        assert_eq!(receipt.status, ReceiptStatus::New);
        let stored = app
            .store
            .latest("BS08", "DVCQ_THANG", &period)
            .await
            .expect("read back")
            .expect("stored");
        assert_eq!(stored.report.narrative, draft.narrative, "{payload:?}");
        assert_eq!(stored.report.prepared_by, draft.prepared_by, "{payload:?}");
        let comment = stored
            .report
            .values
            .iter()
            .find(|v| v.indicator.as_str() == draft.values[0].indicator)
            .and_then(|v| v.comment.clone());
        assert_eq!(comment.as_deref(), Some(draft.values[0].comment.as_str()));
    }
    let after = client
        .submit(&valid_report("sql-text:after", "BS09", PERIOD))
        .await
        .expect("the tables are still there");
    assert_eq!(after.status, ReceiptStatus::New);
    let dump = app.store.dump().await.expect("dump");
    for n in 0..payloads.len() {
        assert!(
            dump.contains(&format!("sql-text:{n}")),
            "report {n} in the dump"
        );
    }
    assert!(dump.contains("sql-text:after"));
    assert_eq!(
        app.store.change_counter().await.expect("counter"),
        payloads.len() as i64 + 1
    );
    app.stop().await;
}

#[tokio::test]
async fn path_separators_and_traversal_in_codes_are_refused() {
    let mut target = Target::start().await;
    let paths = [
        "../../etc/passwd",
        "..\\..\\Windows\\win.ini",
        "/etc/passwd",
        "C:\\Windows",
        "BS02\u{0}.db",
        "BS02/../BS03",
        "./BS02",
        "%2e%2e%2fetc",
    ];
    let mut n = 0;
    for slot in CODE_SLOTS {
        for path in paths {
            n += 1;
            let case = format!("{} = {path:?}", slot.field());
            let mentions: &[&str] = match slot {
                Slot::Period => &[],
                _ => &["contains"],
            };
            target
                .refused(
                    &case,
                    &slot.draft(n, path.into()),
                    slot.field(),
                    slot.malformed_rule(),
                    mentions,
                )
                .await;
        }
    }
    target.finish().await;
}

// ------------------------------------------------------------------------------------------
// Configuration files
// ------------------------------------------------------------------------------------------

/// A catalog whose `grace_days` puts a deadline past the end of chrono's calendar (year
/// 262142: from about 95 million days on, 96 million for every period tonghop accepts) must be
/// refused when it is loaded. It used to load, and then every report of that data set panicked
/// in `period::deadline` (`NaiveDate + Days` out of range): the stream was reset, and the
/// client got CANCELLED "h2 protocol error", which it is told to retry. (Found reading the
/// code the `catalog_toml` fuzz target covers; its invariants turn such an input into a
/// crash.)
#[test]
fn a_catalog_whose_deadlines_overflow_the_calendar_is_refused() {
    use tonghop::domain::Catalog;
    use tonghop::domain::catalog::DEFAULT_CATALOG_TOML;
    for grace_days in [96_000_000_u32, 4_000_000_000, u32::MAX] {
        let text = DEFAULT_CATALOG_TOML.replacen(
            "grace_days = 5",
            &format!("grace_days = {grace_days}"),
            1,
        );
        assert!(
            text.contains(&grace_days.to_string()),
            "the catalog was changed"
        );
        let loaded = Catalog::from_toml(&text);
        let err = loaded
            .err()
            .unwrap_or_else(|| panic!("grace_days = {grace_days} is accepted"));
        assert!(err.to_string().contains("grace_days"), "{err}");
    }
}

// ------------------------------------------------------------------------------------------
// The server's own log
// ------------------------------------------------------------------------------------------

/// A log writer into memory, shared with the test.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        log.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything this test binary logs, from the moment a test asks for it. A global subscriber,
/// because tracing caches each call site's interest globally: a subscriber set for one thread
/// only misses events whose call sites another test's thread saw first.
fn captured_log() -> &'static LogBuffer {
    static LOG: std::sync::OnceLock<LogBuffer> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let log = LogBuffer::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in this test binary (TEST_LOG unset)");
        log
    })
}

/// A rejected report is logged with its submission id, unit and period as received. Codes
/// with a line break or an escape sequence must not forge log lines or drive an operator's
/// terminal, and a megabyte code must not become a megabyte log line.
#[tokio::test]
async fn rejected_codes_are_logged_escaped_and_shortened() {
    let log = captured_log();
    let mut target = Target::start().await;
    let cases = [
        (
            Slot::UnitCode,
            "BS02\n2026-01-01T00:00:00Z  INFO forged: report accepted".to_owned(),
        ),
        (
            Slot::SubmissionId,
            "logtest:\u{1b}[2J\u{1b}[31mcleared".to_owned(),
        ),
        (Slot::Period, "A".repeat(MEGABYTE)),
    ];
    for (n, (slot, value)) in cases.into_iter().enumerate() {
        let case = format!("{} logged", slot.field());
        let mut draft = slot.draft(n, value);
        if slot != Slot::SubmissionId {
            draft.submission_id = format!("logtest:{n}");
        }
        target
            .refused(&case, &draft, slot.field(), slot.malformed_rule(), &[])
            .await;
    }
    target.finish().await;
    let text =
        String::from_utf8_lossy(&log.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    // Other tests log concurrently: judge the lines of this test's reports.
    let ours: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("report rejected") && line.contains("logtest:"))
        .collect();
    assert_eq!(ours.len(), 3, "the three rejections are logged:\n{ours:#?}");
    let mut problems = Vec::new();
    if text
        .lines()
        .any(|line| line.starts_with("2026-01-01T00:00:00Z  INFO forged"))
    {
        problems.push("a line break in a unit code starts a new log line".to_owned());
    }
    if ours.iter().any(|line| line.contains('\u{1b}')) {
        problems.push("an escape sequence reaches the log".to_owned());
    }
    let longest = ours.iter().map(|line| line.len()).max().unwrap_or(0);
    if longest > 16 * 1024 {
        problems.push(format!("a log line of {longest} bytes"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
