//! `tonghop bench ingest`: N simulated units push M reports of 20 values each, concurrently,
//! over real gRPC to a `tonghop serve` in another process; and, in the same run, the bare store
//! writes the same reports with no gRPC, as the baseline. Prints reports/s, values/s, p50/p99
//! latency of an acknowledged submit, the server's peak memory, the ratio to the baseline, and
//! the CPU time per report of the server, of the load generator and of the bare store: on a
//! shared 2-core machine the rate is bounded by where those cores go. It runs in rounds of one
//! pass of each kind, back to back, and reports the rounds' medians, because this machine's
//! speed swings within minutes and one slow stretch would otherwise decide the figure.

use super::IngestBenchArgs;
use crate::domain::period::date;
use crate::domain::{
    Catalog, DraftValue, Narrative, ReportDraft, UnitTree, ValidationLimits, validation,
};
use crate::grpc::client::AggregatorClient;
use crate::store::bench::TempPgDatabase;
use crate::store::{self, NewRevision, StoreOptions};
use chrono::Utc;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Twenty indicators of the monthly data set, consistent with its rules.
fn values(seed: usize) -> Vec<DraftValue> {
    let s = (seed % 50) as f64;
    [
        ("tiep_cong_dan", 2.0 + s),
        ("don_tiep_nhan", 10.0 + s),
        ("vu_viec_tiep_nhan", 8.0 + s),
        ("don_thuoc_tham_quyen", 6.0),
        ("vu_viec_thuoc_tham_quyen", 5.0),
        ("don_chuyen", 4.0),
        ("vu_viec_chuyen", 3.0),
        ("hs_tiep_nhan", 2600.0 + s),
        ("hs_giai_quyet", 2500.0 + s),
        ("hs_dung_han", 2400.0 + s),
        ("doi_thoai", 1.0),
        ("hoi_nghi_tuyen_truyen", 2.0),
        ("nguoi_tham_du", 117.0),
        ("tai_lieu_phat_hanh", 374.0),
        ("mo_hinh_dang_ky", 110.0),
        ("mo_hinh_cong_nhan", 31.0),
        ("mo_hinh_tieu_bieu", 13.0),
        ("von_huy_dong", 35_000_000.0 + s),
        ("dat_hien", 320.5),
        ("tro_giup_phap_ly", 81.0),
    ]
    .into_iter()
    .map(|(indicator, value)| DraftValue {
        indicator: indicator.into(),
        value,
        comment: String::new(),
    })
    .collect()
}

/// The year of each unit's first report: report r is month r from January of it.
const FIRST_YEAR: i32 = 2000;

/// Most reports per unit: the months from January `FIRST_YEAR` through December 2024. A later
/// month could lie in the server's future and be refused midway through a run.
pub(super) const MAX_REPORTS_PER_UNIT: u64 = (2024 - FIRST_YEAR as u64 + 1) * 12;

fn report(unit: usize, r: usize, tag: &str) -> ReportDraft {
    // Report r of a unit is month r from January FIRST_YEAR: every (unit, period) is new.
    let year = FIRST_YEAR + (r / 12) as i32;
    let month = r % 12 + 1;
    ReportDraft {
        submission_id: format!("{tag}-U{unit:04}-{r}"),
        unit_code: format!("U{unit:04}"),
        data_set: "DVCQ_THANG".into(),
        period: format!("{year}{month:02}"),
        values: values(unit + r),
        narrative: Narrative::default(),
        prepared_by: "bench".into(),
        client_time: None,
    }
}

fn units_toml(n: usize) -> String {
    let mut t = String::from(
        "[[units]]\ncode = \"BENCH\"\nname = \"Bench province\"\nlevel = \"province\"\n",
    );
    t.push_str(&format!("population = {}\n", 100_000 * n));
    for u in 0..n {
        t.push_str(&format!(
            "[[units]]\ncode = \"U{u:04}\"\nname = \"District {u}\"\nparent = \"BENCH\"\n\
             level = \"district\"\npopulation = 100000\n"
        ));
    }
    t
}

struct Figures {
    /// Latency of each acknowledged submit, in ms, sorted.
    latencies_ms: Vec<f64>,
    /// The store's change counter after the server stopped: equals the acknowledged reports
    /// or the run fails.
    stored: i64,
    seconds: f64,
    shed: usize,
    peak_kib: Option<u64>,
    /// CPU seconds the server process and this process (the load generator) used while the
    /// clock ran: where the two cores went.
    server_cpu_s: Option<f64>,
    client_cpu_s: Option<f64>,
}

impl Figures {
    fn reports(&self) -> usize {
        self.latencies_ms.len()
    }

    fn rate(&self) -> f64 {
        self.reports() as f64 / self.seconds
    }
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

/// What the bare store did: its rate, and the CPU seconds this process used meanwhile.
struct BareFigures {
    rate: f64,
    cpu_s: Option<f64>,
}

/// The bare store, no gRPC: validation and `Store::record`, as many writers as units.
async fn bare_store(url: &str, args: &IngestBenchArgs) -> anyhow::Result<BareFigures> {
    let store = store::open(url, &StoreOptions::default()).await?;
    let catalog = Arc::new(Catalog::embedded()?);
    // The tree the server process reads from its units file, so both passes see the same.
    let tree = Arc::new(UnitTree::from_toml(&units_toml(args.units))?);
    let cpu_before = super::bench::proc_stat::cpu_seconds("self");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for u in 0..args.units {
        let (store, catalog, tree) = (store.clone(), catalog.clone(), tree.clone());
        let reports = args.reports;
        tasks.push(tokio::spawn(async move {
            for r in 0..reports {
                let draft = report(u, r, "bare");
                let checked = validation::validate(
                    &draft,
                    &catalog,
                    &tree,
                    &ValidationLimits::default(),
                    date(2030, 1, 1),
                )
                .map_err(|v| anyhow::anyhow!("bench report invalid: {v:?}"))?;
                let now = Utc::now();
                store
                    .record(NewRevision {
                        content_hash: checked.report.content_hash(),
                        received_at: now,
                        deadline: checked.deadline,
                        on_time: now <= checked.deadline,
                        window: checked.window,
                        warnings: checked.warnings,
                        report: checked.report,
                    })
                    .await?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_s = cpu_used_since(cpu_before, "self");
    store.close().await;
    Ok(BareFigures {
        rate: (args.units * args.reports) as f64 / seconds,
        cpu_s,
    })
}

fn cpu_used_since(before: Option<f64>, process: &str) -> Option<f64> {
    Some(super::bench::proc_stat::cpu_seconds(process)? - before?)
}

/// Starts `tonghop serve` on a free port and returns it with its address. The server's log goes
/// to `log_path`, a file, not to a pipe: reading a pipe here would wake this process, the load
/// generator, once per logged report, and those wake-ups took a share of the two cores that
/// belongs to neither side of the measurement. A real deployment's log goes to a file or the
/// journal, another process either way.
async fn spawn_server(
    url: &str,
    units_file: &Path,
    max_calls: usize,
    log_path: &Path,
) -> anyhow::Result<(Child, String)> {
    let log = std::fs::File::create(log_path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", log_path.display()))?;
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args([
            "serve",
            "--insecure",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            url,
        ])
        .arg("--units")
        .arg(units_file)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env("TONGHOP_REVIEW_SCHEDULE", "")
        .env("TONGHOP_MAX_CONCURRENT_CALLS", max_calls.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()?;
    let give_up = Instant::now() + Duration::from_secs(120);
    loop {
        let written = String::from_utf8_lossy(&std::fs::read(log_path)?).into_owned();
        if let Some(addr) = listening_address(&written) {
            return Ok((child, format!("http://{addr}")));
        }
        let exited = child.try_wait()?;
        if exited.is_some() || Instant::now() >= give_up {
            let _ = child.kill();
            let _ = child.wait();
            // Read again: the server may have written its last words after the read above.
            let written = String::from_utf8_lossy(&std::fs::read(log_path)?).into_owned();
            let lines: Vec<&str> = written.lines().collect();
            let tail = &lines[lines.len().saturating_sub(20)..];
            anyhow::bail!(
                "the benchmark server {} before it listened; the end of its log:\n{}",
                match exited {
                    Some(status) => format!("exited ({status})"),
                    None => "took over 120 s to start".to_owned(),
                },
                tail.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The address in the server's "aggregator listening" line, once the log holds it.
fn listening_address(log: &str) -> Option<&str> {
    // Whole lines only: a read may catch the server halfway through writing one.
    log.split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .find(|line| line.contains("aggregator listening"))
        .and_then(|line| line.split("addr=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
}

async fn over_grpc(
    url: &str,
    units_file: &Path,
    args: &IngestBenchArgs,
    max_calls: usize,
    log_path: &Path,
) -> anyhow::Result<Figures> {
    let (mut server, endpoint) = spawn_server(url, units_file, max_calls, log_path).await?;
    let server_pid = server.id().to_string();
    // The server goes down however the load ends; an error is told after that.
    let load = async {
        // Each simulated unit has its own connection, as district nodes do; they are all open
        // before the clock starts, so the figure is about submitting, not about TCP handshakes.
        let mut clients = Vec::with_capacity(args.units);
        for _ in 0..args.units {
            clients.push(AggregatorClient::connect(&endpoint).await?);
        }
        let (server_cpu_before, client_cpu_before) = (
            super::bench::proc_stat::cpu_seconds(&server_pid),
            super::bench::proc_stat::cpu_seconds("self"),
        );
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (u, mut client) in clients.into_iter().enumerate() {
            let reports = args.reports;
            tasks.push(tokio::spawn(async move {
                let (mut latencies, mut shed) = (Vec::with_capacity(reports), 0usize);
                for r in 0..reports {
                    let draft = report(u, r, "grpc");
                    let t0 = Instant::now();
                    loop {
                        match client.submit(&draft).await {
                            Ok(_) => break,
                            Err(f) if f.retryable => {
                                shed += 1;
                                tokio::time::sleep(
                                    f.retry_after.unwrap_or(Duration::from_millis(100)),
                                )
                                .await;
                            }
                            Err(f) => anyhow::bail!("{}: {f}", draft.submission_id),
                        }
                    }
                    latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
                }
                Ok::<_, anyhow::Error>((latencies, shed))
            }));
        }
        let (mut all, mut shed) = (Vec::new(), 0);
        for t in tasks {
            let (l, s) = t.await??;
            all.extend(l);
            shed += s;
        }
        let seconds = started.elapsed().as_secs_f64();
        let server_cpu_s = cpu_used_since(server_cpu_before, &server_pid);
        let client_cpu_s = cpu_used_since(client_cpu_before, "self");
        Ok::<_, anyhow::Error>((all, shed, seconds, server_cpu_s, client_cpu_s))
    }
    .await;
    let peak = super::bench::proc_stat::peak_rss_kib(&server_pid);
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
    let (mut all, shed, seconds, server_cpu_s, client_cpu_s) = load?;
    // Every acknowledged report must be in the store once: count what the server left behind.
    let store = store::open(url, &StoreOptions::default()).await?;
    let stored = store.change_counter().await?;
    store.close().await;
    if stored != all.len() as i64 {
        anyhow::bail!(
            "{} reports were acknowledged but the store's change counter says {stored}",
            all.len()
        );
    }
    all.sort_by(|a, b| a.total_cmp(b));
    Ok(Figures {
        latencies_ms: all,
        stored,
        seconds,
        shed,
        peak_kib: peak,
        server_cpu_s,
        client_cpu_s,
    })
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
         connection, server in another process; {} rounds of a bare-store pass and a gRPC pass \
         per backend; {} cores",
        args.units,
        args.reports,
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
        println!(
            "  ratio gRPC ÷ bare store     {:>9.2}   (the rounds' median; target ≥ 0.5; target ≥ 5,000 reports/s on SQLite, p99 < 50 ms)",
            ratio
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
    use super::{listening_address, median, percentile, total_cpu};

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

    #[test]
    fn the_address_is_read_from_the_listening_line_once_it_is_written() {
        let starting = "2026-12-02T03:00:00Z  INFO tonghop::store: migrations done\n";
        assert_eq!(listening_address(starting), None);
        let listening = format!(
            "{starting}2026-12-02T03:00:01Z  INFO tonghop::grpc::server: aggregator listening \
             addr=127.0.0.1:40123 store=\"sqlite\"\n"
        );
        assert_eq!(listening_address(&listening), Some("127.0.0.1:40123"));
        // Caught halfway through the line: not yet an address.
        let halfway = &listening[..listening.find("40123").expect("port") + 3];
        assert_eq!(listening_address(halfway), None);
    }
}
