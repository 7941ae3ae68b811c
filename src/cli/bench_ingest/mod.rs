//! `tonghop bench ingest`: N simulated units push M reports of 20 values each, concurrently,
//! over real gRPC to a `tonghop serve` in another process; and, in the same run, the bare store
//! writes the same reports with no gRPC, as the baseline. Prints reports/s, values/s, p50/p99
//! latency of an acknowledged submit, the server's peak memory, the ratio to the baseline, and
//! the CPU time per report of the server, of the load generator and of the bare store: on a
//! shared 2-core machine the rate is bounded by where those cores go. It runs in rounds of one
//! pass of each kind, back to back, and reports the rounds' medians, because this machine's
//! speed swings within minutes and one slow stretch would otherwise decide the figure.

mod passes;

use super::{IngestBenchArgs, UnitClient};
use crate::store::bench::TempPgDatabase;
pub(super) use passes::MAX_REPORTS_PER_UNIT;
use passes::{BareFigures, Figures, bare_store, over_grpc, units_toml, values};
use std::path::Path;
use std::process::ExitCode;

/// Issue 7's targets, each as "met" or "missed" with the figure beside it. The ratio is shown to
/// three decimals because the summary's two would print 0.496 as 0.50, a pass that is not one.
/// The 5,000 reports/s target is SQLite's only; PostgreSQL is held to the ratio and p99.
fn targets(backend: &str, grpc_rate: f64, ratio: f64, p99_ms: f64) -> String {
    let mark = |met: bool| if met { "met" } else { "MISSED" };
    let mut parts = Vec::new();
    if backend == "sqlite" {
        parts.push(format!(
            "≥ 5,000 reports/s {} ({grpc_rate:.0})",
            mark(grpc_rate >= 5_000.0)
        ));
    }
    parts.push(format!("ratio ≥ 0.5 {} ({ratio:.3})", mark(ratio >= 0.5)));
    parts.push(format!("p99 < 50 ms {} ({p99_ms:.1})", mark(p99_ms < 50.0)));
    format!("  targets: {}", parts.join(", "))
}

/// CPU seconds spread over reports, as "123 µs"; "?" where the platform gave no figure.
fn micros_per_report(cpu_s: Option<f64>, reports: usize) -> String {
    match cpu_s {
        Some(s) if reports > 0 => format!("{:.0} µs", s * 1e6 / reports as f64),
        _ => "?".into(),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The middle value (the mean of the two middle ones for an even count); 0 for none.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// A sum of per-round CPU readings, or `None` if any round had none.
fn total_cpu(readings: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    readings.sum()
}
/// A new database for one pass: an SQLite file in the run's folder, or a PostgreSQL database
/// created for it and added to `created`, which the caller drops.
async fn new_database(
    backend: &str,
    dir: &Path,
    name: &str,
    args: &IngestBenchArgs,
    created: &mut Vec<TempPgDatabase>,
) -> anyhow::Result<String> {
    if backend == "sqlite" {
        return Ok(format!(
            "sqlite://{}",
            dir.join(format!("{name}.db")).display()
        ));
    }
    let database = super::bench::create_database(&args.postgres_url).await?;
    let url = database.url.clone();
    created.push(database);
    Ok(url)
}

/// Drops a pass's PostgreSQL databases, on every path (a failed drop is only a warning).
async fn drop_databases(databases: Vec<TempPgDatabase>) {
    for database in databases {
        super::bench::drop_database(database).await;
    }
}

/// One round: the bare store and the server, each on a new database, back to back, so the two
/// rates of a round saw the machine in the same state.
struct Round {
    bare: BareFigures,
    grpc: Figures,
}

impl Round {
    fn ratio(&self) -> f64 {
        self.grpc.rate() / self.bare.rate
    }
}

/// Round `round`'s two passes. Odd rounds run the bare store first, even rounds the server
/// first, so whatever the first pass leaves behind (a checkpoint, autovacuum, a warm cache)
/// does not always land on the same side.
async fn measure_round(
    backend: &str,
    dir: &Path,
    units_file: &Path,
    round: usize,
    args: &IngestBenchArgs,
    created: &mut Vec<TempPgDatabase>,
) -> anyhow::Result<Round> {
    let bare_url = new_database(backend, dir, &format!("bare-{round}"), args, created).await?;
    let grpc_url = new_database(backend, dir, &format!("grpc-{round}"), args, created).await?;
    let log = dir.join(format!("{backend}-server-{round}.log"));
    let of = args.rounds;
    let bare_pass = || async {
        eprintln!("{backend}: round {round} of {of}: bare store…");
        bare_store(&bare_url, args).await
    };
    let grpc_pass = || async {
        eprintln!("{backend}: round {round} of {of}: over gRPC…");
        over_grpc(&grpc_url, units_file, args, 4096, &log).await
    };
    let (bare, grpc) = if round % 2 == 1 {
        let bare = bare_pass().await?;
        (bare, grpc_pass().await?)
    } else {
        let grpc = grpc_pass().await?;
        (bare_pass().await?, grpc)
    };
    Ok(Round { bare, grpc })
}

fn mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.0} MiB", k as f64 / 1024.0))
        .unwrap_or("?".into())
}

pub async fn run(args: IngestBenchArgs) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let units_file = dir.path().join("units.toml");
    std::fs::write(&units_file, units_toml(args.units))?;
    let values_each = values(0).len();
    let reports_each_pass = args.units * args.reports;
    println!(
        "ingest benchmark: {} units × {} reports × {values_each} values, each unit on its own \
         HTTP/2 connection ({}; one unary Submit per report, built before the clock starts), \
         server in another process; {} rounds of a bare-store pass and a gRPC pass per backend; \
         {} cores",
        args.units,
        args.reports,
        match args.client {
            UnitClient::Lean =>
                "the lean client: an agent's frames, less of the load generator's CPU",
            UnitClient::Tonic => "tonic's client, the agent's own",
        },
        args.rounds,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let mut backends = vec!["sqlite"];
    if !args.skip_postgres {
        backends.push("postgres");
    }
    for backend in backends {
        println!("\n{backend}");
        let mut rounds = Vec::with_capacity(args.rounds);
        for round in 1..=args.rounds {
            let mut databases = Vec::new();
            let measured = measure_round(
                backend,
                dir.path(),
                &units_file,
                round,
                &args,
                &mut databases,
            )
            .await;
            drop_databases(databases).await;
            let done = measured?;
            println!(
                "  round {round}: bare store {:.0} reports/s, over gRPC {:.0} reports/s, p99 {:.1} ms, ratio {:.2}; {} acknowledged, {} stored",
                done.bare.rate,
                done.grpc.rate(),
                percentile(&done.grpc.latencies_ms, 0.99),
                done.ratio(),
                done.grpc.reports(),
                done.grpc.stored
            );
            rounds.push(done);
        }
        let limit = (args.units / 4).max(1);
        eprintln!("{backend}: over gRPC at 4× a concurrency limit of {limit}, one pass…");
        let mut databases = Vec::new();
        let overload = async {
            let url = new_database(backend, dir.path(), "overload", &args, &mut databases).await?;
            let log = dir.path().join(format!("{backend}-overload-server.log"));
            over_grpc(&url, &units_file, &args, limit, &log).await
        }
        .await;
        drop_databases(databases).await;
        let overload = overload?;
        let bare_rate = median(&rounds.iter().map(|r| r.bare.rate).collect::<Vec<_>>());
        let grpc_rate = median(&rounds.iter().map(|r| r.grpc.rate()).collect::<Vec<_>>());
        let ratio = median(&rounds.iter().map(Round::ratio).collect::<Vec<_>>());
        // Every acknowledged submit of every round: the slow rounds' tails count in full.
        let mut latencies: Vec<f64> = rounds
            .iter()
            .flat_map(|r| r.grpc.latencies_ms.iter().copied())
            .collect();
        latencies.sort_by(|a, b| a.total_cmp(b));
        let acknowledged = latencies.len();
        let stored: i64 = rounds.iter().map(|r| r.grpc.stored).sum();
        let peak_kib = rounds.iter().filter_map(|r| r.grpc.peak_kib).max();
        println!(
            "  over {} rounds: rates and the ratio are the rounds' medians, p50/p99 over every \
             submit, CPU is the total over the rounds ÷ their reports, memory the highest round's:",
            args.rounds
        );
        println!(
            "  bare store (no gRPC)        {:>9.0} reports/s  {:>10.0} values/s  CPU {} per report",
            bare_rate,
            bare_rate * values_each as f64,
            micros_per_report(
                total_cpu(rounds.iter().map(|r| r.bare.cpu_s)),
                reports_each_pass * rounds.len()
            )
        );
        println!(
            "  over gRPC                   {:>9.0} reports/s  {:>10.0} values/s  p50 {:.1} ms  p99 {:.1} ms  peak server memory {}",
            grpc_rate,
            grpc_rate * values_each as f64,
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            mib(peak_kib)
        );
        println!(
            "  acknowledged {acknowledged}, in the store after the server stopped {stored} (synchronous commits: every acknowledgement durable; p50 and p99 over every round's submits)"
        );
        println!(
            "  CPU per report over gRPC: server {}, load generator {} (both share the machine's cores{})",
            micros_per_report(
                total_cpu(rounds.iter().map(|r| r.grpc.server_cpu_s)),
                acknowledged
            ),
            micros_per_report(
                total_cpu(rounds.iter().map(|r| r.grpc.client_cpu_s)),
                acknowledged
            ),
            if backend == "postgres" {
                "; PostgreSQL's own processes not counted, here or in the bare store's"
            } else {
                ""
            }
        );
        let (lowest, highest) = rounds
            .iter()
            .map(Round::ratio)
            .fold((f64::INFINITY, 0.0_f64), |(lo, hi), r| {
                (lo.min(r), hi.max(r))
            });
        println!(
            "  ratio gRPC ÷ bare store     {ratio:>9.2}   (the rounds' median, rounds {lowest:.2} to \
             {highest:.2}; the targets line below judges the median)"
        );
        println!(
            "{}",
            targets(backend, grpc_rate, ratio, percentile(&latencies, 0.99))
        );
        println!(
            "  at 4× the limit ({limit} calls), one pass {:>9.0} reports/s  p99 {:.1} ms  {} calls shed with RetryInfo and retried  peak server memory {}",
            overload.rate(),
            percentile(&overload.latencies_ms, 0.99),
            overload.shed,
            mib(overload.peak_kib)
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::{median, percentile, targets, total_cpu};

    #[test]
    fn the_targets_line_marks_each_target_and_a_ratio_just_under_a_half_as_missed() {
        // 0.496 prints as 0.50 with two decimals, yet it is under 0.5.
        assert_eq!(
            targets("sqlite", 9_513.0, 0.496, 12.3),
            "  targets: ≥ 5,000 reports/s met (9513), ratio ≥ 0.5 MISSED (0.496), \
             p99 < 50 ms met (12.3)"
        );
        // Exactly at each edge: 5,000 and 0.5 meet theirs, 50.0 ms does not (p99 < 50).
        assert_eq!(
            targets("sqlite", 5_000.0, 0.5, 50.0),
            "  targets: ≥ 5,000 reports/s met (5000), ratio ≥ 0.5 met (0.500), \
             p99 < 50 ms MISSED (50.0)"
        );
        // PostgreSQL has no rate target.
        assert_eq!(
            targets("postgres", 4_200.0, 0.85, 24.5),
            "  targets: ratio ≥ 0.5 met (0.850), p99 < 50 ms met (24.5)"
        );
    }

    #[test]
    fn the_median_is_the_middle_round_or_the_mean_of_the_two_middle_ones() {
        // Three rounds, unsorted: sorted 4,000 < 5,000 < 7,000, the middle one is 5,000.
        assert_eq!(median(&[7_000.0, 4_000.0, 5_000.0]), 5_000.0);
        // Four: (5,000 + 6,000) / 2 = 5,500.
        assert_eq!(median(&[6_000.0, 4_000.0, 9_000.0, 5_000.0]), 5_500.0);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn percentiles_are_the_nearest_rank_of_the_sorted_latencies() {
        let latencies: Vec<f64> = (1..=200).map(f64::from).collect();
        // p99: index round(199 × 0.99) = round(197.01) = 197, the value 198.
        assert_eq!(percentile(&latencies, 0.99), 198.0);
        // p50: index round(199 × 0.5) = round(99.5) = 100, the value 101.
        assert_eq!(percentile(&latencies, 0.50), 101.0);
        assert_eq!(percentile(&[], 0.99), 0.0);
    }

    #[test]
    fn a_cpu_total_needs_every_rounds_reading() {
        // 0.5 + 1.25 + 0.25 = 2.0 s.
        assert_eq!(
            total_cpu([Some(0.5), Some(1.25), Some(0.25)].into_iter()),
            Some(2.0)
        );
        // One round without a reading: no total, rather than one too small.
        assert_eq!(total_cpu([Some(0.5), None, Some(0.25)].into_iter()), None);
    }
}
