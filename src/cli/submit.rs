//! `tonghop submit FILE`: one report to a running aggregator; prints the receipt, or every
//! violation as a readable list, and says by its exit code what happened.

use super::{EXIT_FAILURE, EXIT_REJECTED, EXIT_RETRY_LATER, SubmitArgs, read_report_file};
use crate::domain::{Receipt, period::vietnam_offset};
use crate::grpc::client::{AggregatorClient, SubmitFailure};
use std::process::ExitCode;

pub async fn run(args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let mut draft = read_report_file(&args.file)?;
    if let Some(id) = args.submission_id {
        draft.submission_id = id;
    }
    let mut client =
        AggregatorClient::connect_with(&args.endpoint, args.tls.tls()?.as_ref()).await?;
    match client.submit(&draft).await {
        Ok(receipt) => {
            if args.json {
                println!("{}", receipt_json(&receipt));
            } else {
                print!(
                    "{}",
                    describe_receipt(&draft.unit_code, &draft.data_set, &draft.period, &receipt)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            if args.json {
                println!("{}", failure_json(&failure));
            } else {
                eprint!("{}", describe_failure(&failure));
            }
            Ok(ExitCode::from(if failure.retryable {
                EXIT_RETRY_LATER
            } else if matches!(
                failure.code,
                tonic::Code::InvalidArgument
                    | tonic::Code::AlreadyExists
                    | tonic::Code::PermissionDenied
            ) {
                EXIT_REJECTED
            } else {
                EXIT_FAILURE
            }))
        }
    }
}

pub fn describe_receipt(unit: &str, data_set: &str, period: &str, r: &Receipt) -> String {
    let vn = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&vietnam_offset())
            .format("%Y-%m-%d %H:%M:%S %:z")
            .to_string()
    };
    let mut out = format!(
        "accepted: {unit} {data_set} {period} revision {} ({})\n",
        r.revision,
        r.status.as_str()
    );
    out.push_str(&format!("  submission id  {}\n", r.submission_id));
    out.push_str(&format!("  received       {}\n", vn(r.received_at)));
    out.push_str(&format!(
        "  deadline       {} ({})\n",
        vn(r.deadline),
        if r.on_time { "on time" } else { "late" }
    ));
    out.push_str(&format!(
        "  data window    {} to {}\n",
        r.window.start, r.window.end
    ));
    for w in &r.warnings {
        out.push_str(&format!("  warning: {w}\n"));
    }
    out
}

pub fn describe_failure(f: &SubmitFailure) -> String {
    let mut out = format!("rejected ({:?}): {}\n", f.code, f.message);
    if !f.violations.is_empty() {
        let width = f
            .violations
            .iter()
            .map(|v| v.field.len())
            .max()
            .unwrap_or(0);
        for v in &f.violations {
            out.push_str(&format!(
                "  {:width$}  [{}]  {}\n",
                v.field, v.rule, v.description
            ));
        }
    }
    if f.retryable {
        let after = f
            .retry_after
            .map(|d| format!(" after {} s", d.as_secs_f64()))
            .unwrap_or_default();
        out.push_str(&format!("  not delivered; try again{after}\n"));
    }
    out
}

fn receipt_json(r: &Receipt) -> serde_json::Value {
    serde_json::json!({
        "accepted": true,
        "submission_id": r.submission_id.as_str(),
        "revision": r.revision,
        "status": r.status.as_str(),
        "received_at": r.received_at.to_rfc3339(),
        "deadline": r.deadline.to_rfc3339(),
        "on_time": r.on_time,
        "window_start": r.window.start.to_string(),
        "window_end": r.window.end.to_string(),
        "warnings": r.warnings,
    })
}

fn failure_json(f: &SubmitFailure) -> serde_json::Value {
    serde_json::json!({
        "accepted": false,
        "code": format!("{:?}", f.code),
        "message": f.message,
        "retryable": f.retryable,
        "violations": f.violations,
    })
}
