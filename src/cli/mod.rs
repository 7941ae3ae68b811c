//! The command line: `serve`, `submit`, `demo`. Each subcommand lives in its own file; this
//! one holds the argument definitions, logging set-up and exit codes.

mod agent;
mod bench;
mod bench_ingest;
mod certs;
mod demo;
mod query;
mod report_file;
mod review;
mod serve;
mod stop_signal;
mod submit;
mod table;

pub use agent::AgentArgs;
pub use report_file::{ReportFileError, read_report_file};

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// The report was refused (invalid, submission id reused, not permitted).
pub const EXIT_REJECTED: u8 = 1;
/// Something else failed: bad settings, unreachable aggregator, I/O.
pub const EXIT_FAILURE: u8 = 2;
/// Not delivered for now, but worth trying again (aggregator unavailable).
pub const EXIT_RETRY_LATER: u8 = 3;

pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:50051";

#[derive(Debug, Parser)]
#[command(
    name = "tonghop",
    version,
    about = "Provincial aggregator for periodic district reports (công tác dân vận chính quyền)"
)]
pub struct Cli {
    /// More log output (repeat for more); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the aggregator: gRPC ingest and catalog, health and reflection.
    Serve(ServeArgs),
    /// Send one report file (TOML or JSON) to an aggregator and print the receipt.
    Submit(SubmitArgs),
    /// Start an aggregator on a temporary SQLite database and have the example province's
    /// districts push a year of monthly reports to it over gRPC.
    Demo(DemoArgs),
    /// Ask a running aggregator for indicators, rankings, completeness, trends or raw values.
    Query(QueryArgs),
    /// Generate the yearly review on a running aggregator and write it (Markdown, HTML, CSV),
    /// or list and fetch stored versions.
    Review(ReviewArgs),
    /// Certificates for mutual TLS: the province CA, the aggregator, units, analysts, admins.
    Certs(CertsArgs),
    /// Benchmarks: analytics against an SQL baseline (see docs/BENCHMARKS.md).
    Bench(BenchArgs),
    /// The district agent: read reports from the district's data, keep them in a durable
    /// outbox, deliver each to the province exactly once.
    Agent(AgentArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Settings file (TOML); also TONGHOP_CONFIG.
    #[arg(long, env = "TONGHOP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:50051].
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// sqlite://FILE or postgres://USER@HOST/DB [default: sqlite://data/tonghop.db].
    #[arg(long)]
    pub database_url: Option<String>,
    /// Catalog TOML [default: the embedded dân vận chính quyền catalog].
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// Reporting units, TOML or CSV [default: the embedded example province].
    #[arg(long)]
    pub units: Option<PathBuf>,
    /// Largest accepted gRPC message in bytes [default: 4194304].
    #[arg(long)]
    pub max_message_bytes: Option<usize>,
    /// Province CA certificate: client certificates must be signed by it.
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// This aggregator's certificate (PEM).
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// This aggregator's private key (PEM).
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Serve plaintext gRPC with no client identities (every call allowed). For trials on a
    /// closed network only.
    #[arg(long)]
    pub insecure: bool,
}

/// A client's certificate for mutual TLS; all three or none (then plaintext `http://`).
#[derive(Debug, Clone, Args)]
pub struct ClientTlsArgs {
    /// Province CA certificate (PEM).
    #[arg(long, env = "TONGHOP_CA")]
    pub ca: Option<PathBuf>,
    /// This client's certificate (PEM), from `tonghop certs`.
    #[arg(long, env = "TONGHOP_CERT")]
    pub cert: Option<PathBuf>,
    /// This client's private key (PEM).
    #[arg(long, env = "TONGHOP_KEY")]
    pub key: Option<PathBuf>,
}

impl ClientTlsArgs {
    pub fn tls(&self) -> anyhow::Result<Option<crate::grpc::client::ClientTls>> {
        match (&self.ca, &self.cert, &self.key) {
            (Some(ca), Some(cert), Some(key)) => Ok(Some(crate::grpc::client::ClientTls {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            })),
            (None, None, None) => Ok(None),
            _ => anyhow::bail!("--ca, --cert and --key go together"),
        }
    }
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Report file: .toml or .json (see examples/binh-son/).
    pub file: PathBuf,
    /// Aggregator address.
    #[arg(long, env = "TONGHOP_ENDPOINT", default_value = DEFAULT_ENDPOINT)]
    pub endpoint: String,
    /// Use this submission id instead of the file's (or the one derived from the content).
    #[arg(long)]
    pub submission_id: Option<String>,
    /// Print the receipt or the violations as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tls: ClientTlsArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The year the districts report on.
    #[arg(long, default_value_t = 2019)]
    pub year: i32,
    /// Keep the demo database in this folder instead of a temporary one.
    #[arg(long)]
    pub keep: Option<PathBuf>,
    /// Where to write the demo year's review.
    #[arg(long, default_value = "demo-review")]
    pub review_out: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QueryKind {
    /// Totals of a node and its units, derived rates from aggregated components.
    Indicators,
    /// Composite ranking with rank changes (and per indicator with --indicator).
    Ranking,
    /// Expected, received, on-time reports; who is missing or late.
    Completeness,
    /// Change against the previous period and the same period last year.
    Trend,
    /// The latest stored values, from --period through --through, as CSV.
    Export,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    pub kind: QueryKind,
    /// Period: 2019, 2019Q3, 2019S1, 2019N9 or 201909.
    #[arg(long)]
    pub period: String,
    #[arg(long, default_value = "DVCQ_THANG")]
    pub data_set: String,
    /// Node of the unit tree [default: the root, the province].
    #[arg(long)]
    pub unit: Option<String>,
    /// Only these indicators (repeat the flag).
    #[arg(long)]
    pub indicator: Vec<String>,
    /// Language of the names: vi or en.
    #[arg(long, default_value = "vi", value_parser = ["vi", "en"])]
    pub lang: String,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// One column (indicators) or row (trend) per unit under the node.
    #[arg(long)]
    pub by_unit: bool,
    /// Rank raw totals, not per 10,000 inhabitants.
    #[arg(long)]
    pub raw: bool,
    /// Last period of an export.
    #[arg(long)]
    pub through: Option<String>,
    #[arg(long, env = "TONGHOP_ENDPOINT", default_value = DEFAULT_ENDPOINT)]
    pub endpoint: String,
    #[command(flatten)]
    pub tls: ClientTlsArgs,
}

#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// The year to review: generates a new version now (administrators only).
    #[arg(long, conflicts_with_all = ["list", "get"], required_unless_present_any = ["list", "get"])]
    pub year: Option<i32>,
    /// List the stored versions (of --for-year, or all).
    #[arg(long)]
    pub list: bool,
    /// Fetch this stored version instead of generating one.
    #[arg(long)]
    pub get: Option<i64>,
    /// With --list: only this year.
    #[arg(long)]
    pub for_year: Option<i32>,
    /// Node of the unit tree [default: the root].
    #[arg(long, default_value = "")]
    pub unit: String,
    #[arg(long, default_value = "vi", value_parser = ["vi", "en"])]
    pub lang: String,
    /// Folder to write review-<year>-<unit>-v<id>.md, .html and a folder of CSV tables into.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    #[arg(long, env = "TONGHOP_ENDPOINT", default_value = DEFAULT_ENDPOINT)]
    pub endpoint: String,
    #[command(flatten)]
    pub tls: ClientTlsArgs,
}

#[derive(Debug, Args)]
pub struct CertsArgs {
    #[command(subcommand)]
    pub action: CertsAction,
}

#[derive(Debug, Subcommand)]
pub enum CertsAction {
    /// Create the province CA, the aggregator's certificate and one certificate per unit, plus
    /// analyst and administrator certificates.
    Init {
        /// Units file (TOML or CSV) [default: the embedded example province].
        #[arg(long)]
        units: Option<PathBuf>,
        /// Folder to write into (created; an existing CA is never overwritten).
        #[arg(long)]
        out: PathBuf,
        /// Host names and IP addresses of the aggregator (repeat) [default: localhost, 127.0.0.1].
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Validity of the issued certificates in days.
        #[arg(long, default_value_t = 825)]
        days: i64,
    },
    /// Issue one more client certificate with an existing CA.
    Issue {
        /// Folder holding ca.pem and ca-key.pem.
        #[arg(long)]
        ca_dir: PathBuf,
        /// Folder to write the certificate and key into.
        #[arg(long)]
        out: PathBuf,
        /// A reporting unit's certificate.
        #[arg(long, conflicts_with = "role", required_unless_present = "role")]
        unit: Option<String>,
        /// analyst or admin.
        #[arg(long, value_parser = ["analyst", "admin"])]
        role: Option<String>,
        #[arg(long, default_value_t = 825)]
        days: i64,
    },
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub which: BenchKind,
}

#[derive(Debug, Subcommand)]
pub enum BenchKind {
    /// Province and national rollups with polars, against the same answers in SQL.
    Analytics(AnalyticsBenchArgs),
    /// Concurrent units pushing reports over gRPC to a server process, against the bare store.
    Ingest(IngestBenchArgs),
}

#[derive(Debug, Args)]
pub struct IngestBenchArgs {
    /// Simulated units, each with its own connection (at most 4,096: the unlimited pass lets
    /// 4,096 calls in at once).
    #[arg(
        long,
        default_value_t = 64,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=4096)
    )]
    pub units: usize,
    /// Reports per unit (20 values each): 64 × 200 = 12,800 reports, a few seconds of load.
    /// Each is a new month from January 2000, so at most 300 (December 2024): a later month
    /// would be refused as a period in the future.
    #[arg(
        long,
        default_value_t = 200,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
            .range(1..=bench_ingest::MAX_REPORTS_PER_UNIT)
    )]
    pub reports: usize,
    /// Rounds per backend, each a bare-store pass and a gRPC pass back to back on new
    /// databases: the rates printed are the rounds' medians, so one slow stretch of a shared
    /// machine does not decide the figure; every round is printed too. Five, not three: on the
    /// benchmark machine the bare store alone swings from about 14,500 to 25,700 reports/s
    /// between the rounds of one run, and a median of three let one such swing decide it.
    #[arg(
        long,
        default_value_t = 5,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=20)
    )]
    pub rounds: usize,
    /// The gRPC client the simulated units use: `lean` puts each call on the wire as the
    /// agent's client does (the same frames and segments) but spends about half its CPU doing
    /// it, since the load generator shares the cores with the server it measures; `tonic` is
    /// the agent's own client (`AggregatorClient`).
    #[arg(long, value_enum, default_value_t = UnitClient::Lean)]
    pub client: UnitClient,
    /// Only SQLite.
    #[arg(long)]
    pub skip_postgres: bool,
    /// Maintenance database through which temporary databases are created and dropped.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub postgres_url: String,
}

/// The gRPC client of `bench ingest`'s simulated units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UnitClient {
    Lean,
    Tonic,
}

#[derive(Debug, Args)]
pub struct AnalyticsBenchArgs {
    /// Districts of the province scenario (a).
    #[arg(long, default_value_t = 700)]
    pub province_units: usize,
    /// Months of reports in the province scenario, ending December 2025 (the year queried).
    #[arg(long, default_value_t = 12)]
    pub province_months: u32,
    /// Reporting units (districts) of the national scenario (b).
    #[arg(long, default_value_t = 10_000)]
    pub national_units: usize,
    /// Provinces the national scenario's districts are spread over.
    #[arg(long, default_value_t = 63)]
    pub national_provinces: usize,
    /// Months of reports in the national scenario, ending December 2024.
    #[arg(long, default_value_t = 120)]
    pub national_months: u32,
    /// Timed runs of the province queries (after one warm-up run).
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Timed runs of the national rollup.
    #[arg(long, default_value_t = 3)]
    pub national_runs: usize,
    /// Timed runs of the province SQL baseline (after one warm-up run).
    #[arg(long, default_value_t = 3)]
    pub sql_runs: usize,
    /// Timed runs of the national SQL baseline (minutes each on SQLite at full size).
    #[arg(long, default_value_t = 1)]
    pub national_sql_runs: usize,
    /// Reports submitted through the ingest path to time freshness.
    #[arg(long, default_value_t = 20)]
    pub freshness_trials: usize,
    /// Only the province scenario (a quick run).
    #[arg(long)]
    pub skip_national: bool,
    /// Only SQLite.
    #[arg(long)]
    pub skip_postgres: bool,
    /// Maintenance database through which a temporary tonghop_bench_<random> database is
    /// created (and dropped at the end).
    #[arg(
        long,
        env = "TONGHOP_BENCH_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub postgres_url: String,
    /// Folder for the SQLite files (kept afterwards) [default: a temporary folder].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 2019)]
    pub seed: u64,
}

pub fn init_tracing(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    // The server logs its work; the client commands print their own results and log only
    // warnings unless asked.
    let base = match (&cli.command, cli.verbose) {
        // Long-running services log their work; an operator reads it in the journal.
        (Command::Serve(_) | Command::Agent(_), 0) => "info",
        // The demo prints its own account; its server's warnings would only repeat it.
        (Command::Demo(_) | Command::Bench(_), 0) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!("{base},h2=warn,tower=warn,hyper=warn,sqlx=warn"))
    });
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // tracing colours whatever stderr is (it only honours NO_COLOR), so a service under
    // systemd or in a container wrote escape codes into every line of its journal, where they
    // show as `[2m…[0m` and split every field from its value: a search for `addr=` found
    // nothing. Off the terminal, no colours; on it, tracing's own default, NO_COLOR included.
    let log = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        log
    } else {
        log.with_ansi(false)
    };
    let _ = log.try_init();
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Submit(args) => submit::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Query(args) => query::run(args).await,
        Command::Certs(args) => certs::run(args),
        Command::Review(args) => review::run(args).await,
        Command::Agent(args) => agent::run(args).await,
    }
}
