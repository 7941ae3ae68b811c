//! `tonghop review`: generate the yearly review on a running aggregator and write its
//! Markdown, HTML and CSV tables to a folder; or list and fetch stored versions.

use super::ReviewArgs;
use crate::grpc::client::AggregatorClient;
use crate::store::reviews::StoredReview;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Writes a review version; returns the Markdown and HTML paths.
pub fn write_review(review: &StoredReview, out: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let m = &review.meta;
    // Codes are [A-Za-z0-9_.-] (checked when the units were loaded): safe in a file name.
    let base = format!("review-{}-{}-{}-v{}", m.year, m.node, m.lang, m.id);
    let tables = out.join(format!("{base}-csv"));
    std::fs::create_dir_all(&tables)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", tables.display()))?;
    let md = out.join(format!("{base}.md"));
    let html = out.join(format!("{base}.html"));
    std::fs::write(&md, &review.markdown)?;
    std::fs::write(&html, &review.html)?;
    for (name, csv) in &review.tables {
        let safe: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            .collect();
        std::fs::write(tables.join(safe), csv)?;
    }
    Ok((md, html))
}

pub async fn run(args: ReviewArgs) -> anyhow::Result<ExitCode> {
    let mut client =
        AggregatorClient::connect_with(&args.endpoint, args.tls.tls()?.as_ref()).await?;
    let fail = |f: crate::grpc::client::SubmitFailure| {
        eprintln!("review failed ({:?}): {}", f.code, f.message);
        Ok(ExitCode::from(super::EXIT_FAILURE))
    };
    if args.list {
        let reviews = match client.reviews(args.for_year).await {
            Ok(r) => r,
            Err(f) => return fail(f),
        };
        for r in &reviews {
            println!(
                "v{:<4} {} {:<6} {} {:<9} {} change counter {}",
                r.id,
                r.year,
                r.node,
                r.lang,
                r.trigger,
                r.generated_at.to_rfc3339(),
                r.change_counter
            );
        }
        if reviews.is_empty() {
            println!("no reviews stored");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let id = match (args.get, args.year) {
        (Some(id), _) => id,
        (None, Some(year)) => match client.generate_review(year, &args.unit, &args.lang).await {
            Ok(meta) => meta.id,
            Err(f) => return fail(f),
        },
        (None, None) => anyhow::bail!("give --year, --get or --list"),
    };
    let review = match client.review(id).await {
        Ok(r) => r,
        Err(f) => return fail(f),
    };
    let (md, html) = write_review(&review, &args.out)?;
    println!(
        "review v{} of {} ({}, data to change counter {}): {} and {}, tables in {}",
        review.meta.id,
        review.meta.year,
        review.meta.node,
        review.meta.change_counter,
        md.display(),
        html.display(),
        md.with_extension("").display().to_string() + "-csv/"
    );
    Ok(ExitCode::SUCCESS)
}
