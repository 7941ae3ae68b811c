//! Bytes that are not a report: undecodable protobuf, frames that lie about their length,
//! requests that are not gRPC at all.

use super::*;

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
