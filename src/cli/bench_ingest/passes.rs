//! The two passes of `tonghop bench ingest` and the workload they share: the bare store
//! writing the synthetic reports in this process, and the simulated units pushing the same
//! reports over gRPC to a `tonghop serve` started as another process. Each pass measures
//! itself (rate, latencies, CPU seconds); `mod.rs` runs them in rounds and reports. By default
//! the units speak gRPC through `grpc::lean_client`, which puts each call on the wire as the
//! agent's tonic client does but with about half its CPU: the load generator shares the
//! machine's two cores with the server it measures, where real district nodes each have a
//! machine of their own, so every microsecond it spends on its side of a call is taken from the
//! server. `--client tonic` runs them on the agent's own client instead.

use super::super::{IngestBenchArgs, UnitClient};
use crate::domain::period::date;
use crate::domain::{
    Catalog, DraftValue, Narrative, Receipt, ReportDraft, UnitTree, ValidationLimits, validation,
};
use crate::grpc::client::{AggregatorClient, SubmitFailure};
use crate::grpc::lean_client::{EncodedReport, LeanSubmitClient};
use crate::store::{self, NewRevision, StoreOptions};
use chrono::Utc;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Twenty indicators of the monthly data set, consistent with its rules.
pub(super) fn values(seed: usize) -> Vec<DraftValue> {
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
pub(in crate::cli) const MAX_REPORTS_PER_UNIT: u64 = (2024 - FIRST_YEAR as u64 + 1) * 12;

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

pub(super) fn units_toml(n: usize) -> String {
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

pub(super) struct Figures {
    /// Latency of each acknowledged submit, in ms, sorted.
    pub(super) latencies_ms: Vec<f64>,
    /// The store's change counter after the server stopped: equals the acknowledged reports
    /// or the run fails.
    pub(super) stored: i64,
    pub(super) seconds: f64,
    pub(super) shed: usize,
    pub(super) peak_kib: Option<u64>,
    /// CPU seconds the server process and this process (the load generator) used while the
    /// clock ran: where the two cores went.
    pub(super) server_cpu_s: Option<f64>,
    pub(super) client_cpu_s: Option<f64>,
}

impl Figures {
    pub(super) fn reports(&self) -> usize {
        self.latencies_ms.len()
    }

    pub(super) fn rate(&self) -> f64 {
        self.reports() as f64 / self.seconds
    }
}

/// What the bare store did: its rate, and the CPU seconds this process used meanwhile.
pub(super) struct BareFigures {
    pub(super) rate: f64,
    pub(super) cpu_s: Option<f64>,
}

/// The bare store, no gRPC: validation and `Store::record`, as many writers as units.
pub(super) async fn bare_store(url: &str, args: &IngestBenchArgs) -> anyhow::Result<BareFigures> {
    let store = store::open(url, &StoreOptions::default()).await?;
    let catalog = Arc::new(Catalog::embedded()?);
    // The tree the server process reads from its units file, so both passes see the same.
    let tree = Arc::new(UnitTree::from_toml(&units_toml(args.units))?);
    // Built before the clock starts, as the gRPC pass's are.
    let drafts: Vec<Vec<ReportDraft>> = (0..args.units)
        .map(|u| (0..args.reports).map(|r| report(u, r, "bare")).collect())
        .collect();
    let cpu_before = super::super::bench::proc_stat::cpu_seconds("self");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for unit_drafts in drafts {
        let (store, catalog, tree) = (store.clone(), catalog.clone(), tree.clone());
        tasks.push(tokio::spawn(async move {
            for draft in unit_drafts {
                let checked = validation::validate(
                    &draft,
                    &catalog,
                    &tree,
                    &ValidationLimits::default(),
                    date(2030, 1, 1),
                )
                .map_err(|v| anyhow::anyhow!("bench report invalid: {v:?}"))?;
                store
                    .record(NewRevision::received(checked, Utc::now()))
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
    Some(super::super::bench::proc_stat::cpu_seconds(process)? - before?)
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

/// A call still shed after this long ends the run: the server is not coming back to it.
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);

/// One simulated unit: its own connection, as each district node has, opened before the clock
/// starts (the figure is about submitting, not about TCP handshakes), and its reports, built
/// before the clock too (a district's report exists before it is sent).
struct SimulatedUnit {
    connection: UnitConnection,
    drafts: Vec<ReportDraft>,
}

/// How a unit sends: the lean client with its reports also encoded beforehand, or tonic's,
/// which encodes each report as it is sent, as the agent does.
enum UnitConnection {
    Lean(LeanSubmitClient, Vec<EncodedReport>),
    /// Boxed: tonic's four service clients make it several times the lean one's size.
    Tonic(Box<AggregatorClient>),
}

impl SimulatedUnit {
    async fn connect(
        client: UnitClient,
        endpoint: &str,
        unit: usize,
        reports: usize,
    ) -> anyhow::Result<Self> {
        let drafts: Vec<ReportDraft> = (0..reports).map(|r| report(unit, r, "grpc")).collect();
        let connection = match client {
            UnitClient::Lean => UnitConnection::Lean(
                LeanSubmitClient::connect(endpoint).await?,
                drafts.iter().map(LeanSubmitClient::encode).collect(),
            ),
            UnitClient::Tonic => {
                UnitConnection::Tonic(Box::new(AggregatorClient::connect(endpoint).await?))
            }
        };
        Ok(SimulatedUnit { connection, drafts })
    }

    async fn submit(&mut self, index: usize) -> Result<Receipt, SubmitFailure> {
        match &mut self.connection {
            UnitConnection::Lean(client, encoded) => client.submit_encoded(&encoded[index]).await,
            UnitConnection::Tonic(client) => client.submit(&self.drafts[index]).await,
        }
    }

    /// Submits every report in turn, each resent after the server's delay while it is shed, and
    /// returns the latency of each acknowledgement (ms) and the number of calls shed.
    async fn push_all(mut self) -> anyhow::Result<(Vec<f64>, usize)> {
        let (mut latencies, mut shed) = (Vec::with_capacity(self.drafts.len()), 0usize);
        for index in 0..self.drafts.len() {
            let t0 = Instant::now();
            loop {
                match self.submit(index).await {
                    Ok(_) => break,
                    Err(f) if f.retryable && t0.elapsed() < GIVE_UP_AFTER => {
                        shed += 1;
                        tokio::time::sleep(f.retry_after.unwrap_or(Duration::from_millis(100)))
                            .await;
                    }
                    Err(f) => anyhow::bail!("{}: {f}", self.drafts[index].submission_id),
                }
            }
            latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        Ok((latencies, shed))
    }
}

pub(super) async fn over_grpc(
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
        let mut units = Vec::with_capacity(args.units);
        for u in 0..args.units {
            units.push(SimulatedUnit::connect(args.client, &endpoint, u, args.reports).await?);
        }
        let (server_cpu_before, client_cpu_before) = (
            super::super::bench::proc_stat::cpu_seconds(&server_pid),
            super::super::bench::proc_stat::cpu_seconds("self"),
        );
        let started = Instant::now();
        let tasks: Vec<_> = units
            .into_iter()
            .map(|unit| tokio::spawn(unit.push_all()))
            .collect();
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
    let peak = super::super::bench::proc_stat::peak_rss_kib(&server_pid);
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

#[cfg(test)]
mod tests {
    use super::listening_address;

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
