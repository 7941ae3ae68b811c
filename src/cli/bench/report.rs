//! The printed results: one table with a column per backend, each figure beside its target,
//! and a one-line summary. Kept apart from the measuring so that how figures are shown can
//! change without touching what is timed.

use super::synthetic::INDICATORS;
use super::{Backend, Figures, Kind, Scenario};
use crate::cli::AnalyticsBenchArgs;
use crate::cli::table::{Table, number};
use std::time::Duration;

// The targets of docs/BENCHMARKS.md, which the table marks as met or not; the texts beside them
// in `report` ("< 50 ms") say the same.
const TARGET_PROVINCE: Duration = Duration::from_millis(50);
const TARGET_NATIONAL: Duration = Duration::from_secs(2);
const TARGET_FRESH: Duration = Duration::from_millis(100);

fn median(times: &[Duration]) -> Option<Duration> {
    percentile(times, 0.5)
}

/// Nearest-rank percentile.
fn percentile(times: &[Duration], p: f64) -> Option<Duration> {
    if times.is_empty() {
        return None;
    }
    let mut sorted = times.to_vec();
    sorted.sort();
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn show(d: Option<Duration>) -> String {
    match d {
        None => "–".into(),
        Some(d) => {
            let ms = d.as_secs_f64() * 1e3;
            if ms < 10.0 {
                format!("{ms:.2} ms")
            } else if ms < 1_000.0 {
                format!("{ms:.1} ms")
            } else {
                format!("{:.2} s", ms / 1e3)
            }
        }
    }
}

fn ratio(sql: Option<Duration>, polars: Option<Duration>) -> Option<f64> {
    match (sql, polars) {
        (Some(s), Some(p)) if p > Duration::ZERO => Some(s.as_secs_f64() / p.as_secs_f64()),
        _ => None,
    }
}

/// A check that a timing of `pick` stays under `limit`.
fn under(
    limit: Duration,
    pick: fn(&Figures) -> Option<Duration>,
) -> impl Fn(&Figures) -> Option<bool> {
    move |f| pick(f).map(|d| d < limit)
}

/// How a line of the results table shows one backend's figures.
type CellFn<'a> = &'a dyn Fn(&Figures) -> String;
/// A line's target, and whether one backend's figures meet it (`None`: not measured).
type Target<'a> = Option<(&'a str, &'a dyn Fn(&Figures) -> Option<bool>)>;

/// One line of the results table.
struct Line {
    figure: String,
    cells: Vec<String>,
    target: String,
    met: Option<bool>,
}

/// Prints the results table and the summary; returns how many numbers disagreed.
pub(super) fn report(
    scenarios: &[Scenario],
    backends: &[Backend],
    results: &[(Kind, Backend, Figures)],
    args: &AnalyticsBenchArgs,
) -> usize {
    let get = |kind: Kind, backend: Backend| {
        results
            .iter()
            .find(|(k, b, _)| *k == kind && *b == backend)
            .map(|(_, _, f)| f)
    };
    let mut lines: Vec<Line> = Vec::new();
    let mut targets: Vec<(String, bool)> = Vec::new();
    let mut ratios: Vec<String> = Vec::new();
    let mut disagreements = 0;
    let mut compared = 0;
    let mut line = |figure: &str, cell: CellFn<'_>, kind: Kind, target: Target<'_>| {
        let figures: Vec<Option<&Figures>> = backends.iter().map(|b| get(kind, *b)).collect();
        let cells = figures
            .iter()
            .map(|f| f.map_or_else(|| "–".to_owned(), cell))
            .collect();
        let (target_text, met) = match target {
            Some((text, check)) => {
                let verdicts: Vec<Option<bool>> =
                    figures.iter().map(|f| f.and_then(check)).collect();
                let met = if verdicts.iter().all(Option::is_none) {
                    None
                } else {
                    Some(verdicts.iter().all(|v| v.unwrap_or(true)))
                };
                (text.to_owned(), met)
            }
            None => (String::new(), None),
        };
        lines.push(Line {
            figure: figure.to_owned(),
            cells,
            target: target_text,
            met,
        });
    };
    for scenario in scenarios {
        let kind = scenario.kind;
        let name = scenario.name();
        let size = format!(
            "{} units × {} months × {} indicators = {} values",
            number(scenario.reporting.len() as f64, 0, true),
            scenario.months.len(),
            INDICATORS.len(),
            number(scenario.values() as f64, 0, true)
        );
        line(&format!("{name}: {size}"), &|_| String::new(), kind, None);
        line(
            "  data generation + bulk load",
            &|f| show(f.load),
            kind,
            None,
        );
        line("  read model cold load", &|f| show(f.cold), kind, None);
        match kind {
            Kind::Province => {
                line(
                    "  (a) indicators, warm, median",
                    &|f| show(median(&f.indicators)),
                    kind,
                    None,
                );
                line(
                    "  (a) composite ranking, warm, median",
                    &|f| show(median(&f.ranking)),
                    kind,
                    None,
                );
                let median_ok = under(TARGET_PROVINCE, |f| median(&f.polars));
                line(
                    &format!("  (a) indicators + ranking, median of {}", args.runs),
                    &|f| show(median(&f.polars)),
                    kind,
                    Some(("< 50 ms", &median_ok)),
                );
                let p95_ok = under(TARGET_PROVINCE, |f| percentile(&f.polars, 0.95));
                line(
                    "  (a) indicators + ranking, p95",
                    &|f| show(percentile(&f.polars, 0.95)),
                    kind,
                    Some(("< 50 ms", &p95_ok)),
                );
                line(
                    &format!("  (c) same answers in SQL, median of {}", args.sql_runs),
                    &|f| show(median(&f.sql)),
                    kind,
                    None,
                );
            }
            Kind::National => {
                let median_ok = under(TARGET_NATIONAL, |f| median(&f.polars));
                line(
                    &format!(
                        "  (b) yearly totals {}–{}, median of {}",
                        scenario.first_year(),
                        scenario.last_year(),
                        args.national_runs
                    ),
                    &|f| show(median(&f.polars)),
                    kind,
                    Some(("< 2 s", &median_ok)),
                );
                line(
                    &format!(
                        "  (c) same answers in SQL, median of {}",
                        args.national_sql_runs.max(1)
                    ),
                    &|f| show(median(&f.sql)),
                    kind,
                    None,
                );
            }
        }
        line(
            "  (c) SQL time ÷ polars time",
            &|f| {
                ratio(median(&f.sql), median(&f.polars))
                    .map_or_else(|| "–".into(), |r| format!("{r:.1}×"))
            },
            kind,
            None,
        );
        line(
            "  (c) SQL and polars answers",
            &|f| match &f.agreement {
                Some(a) if a.agrees() => {
                    format!("agree ({} numbers)", number(a.compared as f64, 0, true))
                }
                Some(a) => format!("DISAGREE ({} of {})", a.mismatches, a.compared),
                None => "–".into(),
            },
            kind,
            None,
        );
        let fresh_ok = under(TARGET_FRESH, |f| median(&f.fresh));
        // The target is the province's; at national size the figure shows what a revision
        // costs when the read model holds every value of the country.
        let fresh_target: Target<'_> = match kind {
            Kind::Province => Some(("< 100 ms", &fresh_ok)),
            Kind::National => None,
        };
        line(
            "  (d) freshness, ack → answer, median",
            &|f| show(median(&f.fresh)),
            kind,
            fresh_target,
        );
        line(
            "  (d) freshness, ack → answer, p95",
            &|f| show(percentile(&f.fresh, 0.95)),
            kind,
            None,
        );
        line(
            "  (d) ingest, submit → ack, median",
            &|f| show(median(&f.submit)),
            kind,
            None,
        );
        line(
            "  peak RSS",
            &|f| {
                f.peak_rss_kib.map_or_else(
                    || "–".into(),
                    |k| format!("{} MiB", number(k as f64 / 1024.0, 0, true)),
                )
            },
            kind,
            None,
        );
    }
    for (kind, backend, figures) in results {
        let scenario = match kind {
            Kind::Province => "province",
            Kind::National => "national",
        };
        if let Some(r) = ratio(median(&figures.sql), median(&figures.polars)) {
            ratios.push(format!("{scenario} {r:.0}× ({})", backend.label()));
        }
        if let Some(a) = &figures.agreement {
            compared += a.compared;
            disagreements += a.mismatches;
            if a.compared == 0 {
                // Nothing compared means the check itself failed: count it as a disagreement.
                disagreements += 1;
            }
            for example in &a.examples {
                eprintln!("MISMATCH {scenario} on {}: {example}", backend.label());
            }
        }
    }

    let mut headers = vec!["Figure"];
    headers.extend(backends.iter().map(|b| b.label()));
    headers.extend(["Target", "Met"]);
    let mut right = vec![false];
    right.extend(backends.iter().map(|_| true));
    right.extend([false, false]);
    let mut table = Table::new(&headers, &right);
    for l in &lines {
        let mut cells = vec![l.figure.clone()];
        cells.extend(l.cells.iter().cloned());
        cells.push(l.target.clone());
        cells.push(match l.met {
            Some(true) => "yes".into(),
            Some(false) => "NO".into(),
            None => String::new(),
        });
        if let Some(met) = l.met {
            targets.push((l.figure.trim().to_owned(), met));
        }
        table.row(cells);
    }
    println!();
    print!("{}", table.render());
    let met = targets.iter().filter(|(_, m)| *m).count();
    let missed: Vec<&str> = targets
        .iter()
        .filter(|(_, m)| !*m)
        .map(|(f, _)| f.as_str())
        .collect();
    println!();
    println!(
        "Summary: {met} of {} targets met{}; SQL and polars answers {}; SQL ÷ polars: {}.",
        targets.len(),
        if missed.is_empty() {
            String::new()
        } else {
            format!(" (missed: {})", missed.join("; "))
        },
        if disagreements == 0 {
            format!("agree ({} numbers)", number(compared as f64, 0, true))
        } else {
            format!("DISAGREE on {disagreements}")
        },
        if ratios.is_empty() {
            "–".to_owned()
        } else {
            ratios.join(", ")
        }
    );
    disagreements
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let times: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        assert_eq!(median(&times), Some(Duration::from_millis(10)));
        assert_eq!(percentile(&times, 0.95), Some(Duration::from_millis(19)));
        assert_eq!(median(&[]), None);
    }
}
