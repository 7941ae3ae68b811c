//! `tonghop demo`: a province's reporting year in under a minute. An aggregator starts on a
//! temporary SQLite database; the example province's districts push twelve monthly reports and a
//! yearly one each, concurrently, over real gRPC, with the things that happen in real life: a
//! correction, a resend after a lost acknowledgement, a rejected report fixed and resent, a late
//! report, one never fixed. The aggregator runs on a simulated clock that walks through the
//! year, so deadlines mean what they would have meant then.

use super::DemoArgs;
use crate::aggregator;
use crate::config::Settings;
use crate::domain::period::{self, vietnam_offset};
use crate::domain::{
    Calendar, DraftValue, Narrative, PeriodId, ReceiptStatus, ReportDraft, ReportingUnit,
};
use crate::grpc::client::{AggregatorClient, SubmitFailure};
use crate::grpc::{Application, ServerOptions};
use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

const MONTHLY: &str = "DVCQ_THANG";
const YEARLY: &str = "DVCQ_NAM";

/// What a district does with one period's report in the demo script.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Script {
    OnTime,
    /// Sends, then sends a corrected report under a new submission id (a revision).
    Corrected,
    /// Sends, loses the acknowledgement, sends the same submission again (a duplicate).
    ResendSame,
    /// Sends a report with errors, reads the violations, fixes it and sends again.
    FixAfterRejection,
    /// Sends after the deadline.
    Late,
    /// Sends a report with errors and never fixes it: the period stays missing.
    NeverFixed,
}

fn script(district: usize, month: u32) -> Script {
    match (district, month) {
        (1, 3) | (4, 7) | (0, 11) => Script::Corrected,
        (6, 4) | (2, 9) => Script::ResendSame,
        (3, 5) | (8, 8) => Script::FixAfterRejection,
        (5, 6) | (7, 12) => Script::Late,
        (9, 10) => Script::NeverFixed,
        _ => Script::OnTime,
    }
}

#[derive(Debug, Default, Clone)]
struct Tally {
    sent: usize,
    new: usize,
    revisions: usize,
    duplicates: usize,
    rejected: usize,
    late: usize,
}

impl Tally {
    fn count(&mut self, outcome: &Result<crate::domain::Receipt, SubmitFailure>) {
        self.sent += 1;
        match outcome {
            Ok(r) => {
                match r.status {
                    ReceiptStatus::New => self.new += 1,
                    ReceiptStatus::Revision => self.revisions += 1,
                    ReceiptStatus::Duplicate => self.duplicates += 1,
                }
                if !r.on_time && r.status != ReceiptStatus::Duplicate {
                    self.late += 1;
                }
            }
            Err(_) => self.rejected += 1,
        }
    }

    fn add(&mut self, other: &Tally) {
        self.sent += other.sent;
        self.new += other.new;
        self.revisions += other.revisions;
        self.duplicates += other.duplicates;
        self.rejected += other.rejected;
        self.late += other.late;
    }
}

/// The aggregator's clock, moved forward by the demo as the simulated year goes by.
#[derive(Clone)]
struct SimulatedClock(Arc<AtomicI64>);

impl SimulatedClock {
    fn set(&self, t: DateTime<Utc>) {
        self.0.store(t.timestamp_micros(), Ordering::SeqCst);
    }
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0.load(Ordering::SeqCst)).unwrap_or_default()
    }
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if !(period::MIN_YEAR + 1..=period::MAX_YEAR).contains(&args.year) {
        anyhow::bail!(
            "--year {} is outside {}..={}",
            args.year,
            period::MIN_YEAR + 1,
            period::MAX_YEAR
        );
    }
    let temp = tempfile::tempdir()?;
    let dir = match &args.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => temp.path().to_path_buf(),
    };
    let db_path = dir.join("tonghop-demo.db");
    if db_path.exists() {
        anyhow::bail!(
            "{} already exists; remove it or choose another --keep folder",
            db_path.display()
        );
    }
    let settings = Settings {
        listen: "127.0.0.1:0".parse()?,
        database_url: format!("sqlite://{}", db_path.display()),
        ..Settings::default()
    };
    let clock = SimulatedClock(Arc::new(AtomicI64::new(0)));
    let ingestor = aggregator::ingestor(&settings).await?.with_clock({
        let clock = clock.clone();
        Arc::new(move || clock.now())
    });
    let units = ingestor.units().clone();
    let store = ingestor.store().clone();
    let query = aggregator::query_service(&ingestor).await?;
    // Plaintext on loopback: the demo's districts and server are one process on one machine.
    // The review is issued on the simulated clock too: dated after the year it reviews.
    let reviewer = crate::review::Reviewer::new(query.clone(), MONTHLY).with_clock({
        let clock = clock.clone();
        Arc::new(move || clock.now())
    });
    let server = Application::bind(settings.listen, ingestor, query, ServerOptions::insecure())
        .await?
        .with_reviewer(reviewer)
        .spawn()?;
    let districts: Vec<ReportingUnit> = units
        .children(&units.root().code)
        .filter(|u| u.level == "district")
        .cloned()
        .collect();

    println!(
        "tonghop demo: {} ({} districts), reporting year {}, simulated clock",
        units.root().name,
        districts.len(),
        args.year
    );
    println!(
        "aggregator listening on {} (gRPC), store {}",
        server.endpoint(),
        settings.database_url
    );
    println!();
    println!("period   sent  new  revisions  duplicates  rejected  late");

    // One connection per district, as separate district nodes would have.
    let mut clients = Vec::new();
    for _ in &districts {
        clients.push(AggregatorClient::connect(&server.endpoint()).await?);
    }

    let mut total = Tally::default();
    let mut notes = Vec::new();
    // Last year first, quietly and without incidents, so this year's review has a year to
    // compare with and the ranking has rank changes.
    let mut history = Tally::default();
    for (year, quiet) in [(args.year - 1, true), (args.year, false)] {
        let periods: Vec<(PeriodId, &str)> = PeriodId::Year { year }
            .months()
            .map(|m| (m, MONTHLY))
            .chain([(PeriodId::Year { year }, YEARLY)])
            .collect();
        for (period, data_set) in periods {
            let grace = if data_set == YEARLY { 10 } else { 5 };
            let deadline = period::deadline(period.window(Calendar::Decree09).end, grace);
            // Most districts send two days before the deadline; the late ones after it.
            let on_time_at = at_vietnam_morning(deadline - chrono::Days::new(2));
            let late_at = at_vietnam_morning(deadline + chrono::Days::new(3));
            let mut tally = Tally::default();
            for late_phase in [false, true] {
                clock.set(if late_phase { late_at } else { on_time_at });
                let mut tasks = Vec::new();
                for (i, district) in districts.iter().enumerate() {
                    let month = period.month_span().1;
                    let plan = if data_set == YEARLY || quiet {
                        Script::OnTime
                    } else {
                        script(i, month)
                    };
                    if (plan == Script::Late) != late_phase {
                        continue;
                    }
                    let mut client = clients[i].clone();
                    let district = district.clone();
                    tasks.push(tokio::spawn(async move {
                        play(&mut client, &district, i, period, data_set, plan).await
                    }));
                }
                for task in tasks {
                    let (outcomes, note) = task.await?;
                    for outcome in &outcomes {
                        tally.count(outcome);
                    }
                    notes.extend(note);
                }
            }
            if quiet {
                history.add(&tally);
                continue;
            }
            println!(
                "{:<8} {:>4} {:>4} {:>10} {:>11} {:>9} {:>5}",
                period.to_string(),
                tally.sent,
                tally.new,
                tally.revisions,
                tally.duplicates,
                tally.rejected,
                tally.late
            );
            total.add(&tally);
        }
        if quiet {
            println!(
                "{:<8} {:>4} {:>4}   (last year, sent first for comparison)",
                year, history.sent, history.new
            );
        }
    }
    println!(
        "{:<8} {:>4} {:>4} {:>10} {:>11} {:>9} {:>5}",
        "total",
        total.sent,
        total.new,
        total.revisions,
        total.duplicates,
        total.rejected,
        total.late
    );
    println!();
    println!("what happened along the way:");
    for note in &notes {
        println!("{note}");
    }
    let counter = store.change_counter().await?;
    let expected_periods = districts.len() * 13;
    // The change counter also counts last year's reports.
    let counter_this_year = counter - (history.new + history.revisions) as i64;
    println!();
    println!(
        "store: {} revisions of {} kept ({counter_this_year} of change counter {counter}); \
         {} of {expected_periods} district-periods received",
        total.new + total.revisions,
        args.year,
        total.new
    );
    // What an analyst sees right away: no batch job between the last receipt and these tables.
    let year = PeriodId::Year { year: args.year };
    let scope = crate::analytics::Scope {
        data_set: MONTHLY.into(),
        period: year,
        node: String::new(),
        indicators: Vec::new(),
    };
    let mut analyst = AggregatorClient::connect(&server.endpoint()).await?;
    // 20 December, 07:00 in Vietnam: when the scheduled review would run.
    let review_day = period::deadline(
        PeriodId::Year { year: args.year }
            .window(Calendar::Decree09)
            .end,
        6,
    ) - chrono::Duration::hours(17);
    clock.set(review_day);
    let indicators = analyst.indicators(&scope).await?;
    println!();
    print!(
        "{}",
        super::query::render_indicators(&indicators, false, false)
    );
    let ranking = analyst.ranking(&scope, None).await?;
    println!();
    print!("{}", super::query::render_ranking(&ranking, false, false));
    // The yearly review, as the provincial office would issue it after the year closes.
    let meta = analyst.generate_review(args.year, "", "vi").await?;
    let review = analyst.review(meta.id).await?;
    let (md, html) = super::review::write_review(&review, &args.review_out)?;
    println!();
    println!(
        "yearly review {} written: {} (Markdown), {} (HTML), CSV tables beside them",
        args.year,
        md.display(),
        html.display()
    );
    server.shutdown().await?;
    store.close().await;
    match &args.keep {
        Some(_) => println!("database kept at {}", db_path.display()),
        None => println!("(the database was temporary; run with --keep DIR to keep it)"),
    }
    Ok(ExitCode::SUCCESS)
}

fn at_vietnam_morning(t: DateTime<Utc>) -> DateTime<Utc> {
    let date = t.with_timezone(&vietnam_offset()).date_naive();
    let local = date.and_time(NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default());
    vietnam_offset()
        .from_local_datetime(&local)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(t)
}

type Outcome = Result<crate::domain::Receipt, SubmitFailure>;

/// Runs one district's script for one period; returns every outcome and a note if notable.
async fn play(
    client: &mut AggregatorClient,
    district: &ReportingUnit,
    index: usize,
    period: PeriodId,
    data_set: &str,
    plan: Script,
) -> (Vec<Outcome>, Option<String>) {
    let good = district_report(district, index, period, data_set, "a");
    let mut outcomes = Vec::new();
    let mut note = String::new();
    let unit = &district.code;
    match plan {
        Script::OnTime => outcomes.push(client.submit(&good).await),
        Script::Late => {
            let outcome = client.submit(&good).await;
            let _ = write!(
                note,
                "  {unit} {period}: sent three days after the deadline"
            );
            if let Ok(r) = &outcome {
                let _ = write!(note, " (receipt says on_time = {})", r.on_time);
            }
            outcomes.push(outcome);
        }
        Script::Corrected => {
            outcomes.push(client.submit(&good).await);
            let mut fixed = district_report(district, index, period, data_set, "b");
            for v in &mut fixed.values {
                if v.indicator == "hs_dung_han" {
                    v.value -= 7.0;
                }
            }
            let outcome = client.submit(&fixed).await;
            if let Ok(r) = &outcome {
                let _ = write!(
                    note,
                    "  {unit} {period}: corrected its dossier figures; stored as revision {}, \
                     both revisions kept",
                    r.revision
                );
            }
            outcomes.push(outcome);
        }
        Script::ResendSame => {
            outcomes.push(client.submit(&good).await);
            let outcome = client.submit(&good).await;
            if let Ok(r) = &outcome {
                let _ = write!(
                    note,
                    "  {unit} {period}: acknowledgement lost, same submission sent again; \
                     recognised as {} of revision {}, nothing written",
                    r.status.as_str(),
                    r.revision
                );
            }
            outcomes.push(outcome);
        }
        Script::FixAfterRejection | Script::NeverFixed => {
            let mut bad = district_report(district, index, period, data_set, "bad");
            for v in &mut bad.values {
                match v.indicator.as_str() {
                    // On-time dossiers above resolved ones, and a negative count.
                    "hs_dung_han" => v.value += 5000.0,
                    "doi_thoai" => v.value = -1.0,
                    "tiep_cong_dan" if plan == Script::NeverFixed => {
                        v.indicator = "tiep_dan".into();
                    }
                    _ => {}
                }
            }
            let outcome = client.submit(&bad).await;
            if let Err(f) = &outcome {
                let rules: Vec<&str> = f.violations.iter().map(|v| v.rule.as_str()).collect();
                let _ = write!(
                    note,
                    "  {unit} {period}: rejected, {} problem(s) named: {}",
                    f.violations.len(),
                    rules.join(", ")
                );
            }
            outcomes.push(outcome);
            if plan == Script::FixAfterRejection {
                let outcome = client.submit(&good).await;
                if outcome.is_ok() {
                    note.push_str("; fixed and sent again, accepted");
                }
                outcomes.push(outcome);
            } else {
                note.push_str("; never fixed, so the period stays missing");
            }
        }
    }
    (outcomes, (!note.is_empty()).then_some(note))
}

/// Plausible figures for a district of this size, the same on every run.
fn district_report(
    district: &ReportingUnit,
    index: usize,
    period: PeriodId,
    data_set: &str,
    variant: &str,
) -> ReportDraft {
    let month = period.month_span().1;
    let scale = district.population as f64 / 100_000.0;
    let mut rng = StdRng::seed_from_u64(
        (index as u64) << 32 | u64::from(month) << 8 | u64::from(period.year() as u32 % 256),
    );
    let mut values: Vec<(&str, f64)> = Vec::new();
    // Stocks grow over the year; the yearly report carries December's.
    let registered = (scale * 12.0).round() + f64::from(month) * (1.0 + (index % 3) as f64);
    let recognised = (registered * 0.3).floor();
    let exemplary = (recognised * 0.4).floor();
    let collective = (registered * 0.66).round();
    let models = [
        ("mo_hinh_dang_ky", registered),
        ("mo_hinh_dang_ky_tap_the", collective),
        ("mo_hinh_dang_ky_ca_nhan", registered - collective),
        ("mo_hinh_cong_nhan", recognised),
        ("mo_hinh_tieu_bieu", exemplary),
    ];
    if data_set == YEARLY {
        values.extend(models);
        values.push((
            "von_huy_dong",
            (scale * rng.random_range(3_000.0..9_000.0)).round() * 1_000_000.0,
        ));
        values.push((
            "dat_hien",
            (scale * rng.random_range(1_000.0..6_000.0) * 10.0).round() / 10.0,
        ));
        values.push(("doi_thoai", f64::from(rng.random_range(4..14))));
    } else {
        let petitions = (scale * rng.random_range(2.0..8.0)).round() + 1.0;
        let cases = (petitions - f64::from(rng.random_range(0..2))).max(1.0);
        let in_jurisdiction = (petitions * 0.6).ceil();
        let cases_in = in_jurisdiction.min(cases);
        let dossiers = (scale * rng.random_range(700.0..1100.0)).round();
        let resolved = (dossiers * rng.random_range(0.93..0.99)).round();
        // Each district has its own habit of punctuality, plus monthly noise.
        let on_time_rate = 0.90 + 0.009 * index as f64 + rng.random_range(0.0..0.01);
        let conferences = f64::from(rng.random_range(1..5));
        let attendees = conferences * f64::from(rng.random_range(60..150));
        values.extend([
            ("tiep_cong_dan", f64::from(rng.random_range(2..7))),
            ("don_tiep_nhan", petitions),
            ("vu_viec_tiep_nhan", cases),
            ("don_thuoc_tham_quyen", in_jurisdiction),
            ("vu_viec_thuoc_tham_quyen", cases_in),
            ("don_chuyen", petitions - in_jurisdiction),
            ("vu_viec_chuyen", cases - cases_in),
            ("hs_tiep_nhan", dossiers),
            ("hs_giai_quyet", resolved),
            ("hs_dung_han", (resolved * on_time_rate.min(1.0)).floor()),
            ("doi_thoai", f64::from(rng.random_range(0..3))),
            ("hoi_nghi_tuyen_truyen", conferences),
            ("nguoi_tham_du", attendees),
            (
                "tai_lieu_phat_hanh",
                attendees * f64::from(rng.random_range(2..5)),
            ),
            (
                "von_huy_dong",
                (scale * rng.random_range(200.0..900.0)).round() * 1_000_000.0,
            ),
            (
                "dat_hien",
                (rng.random_range(0.0..500.0) * 10.0_f64).round() / 10.0,
            ),
            (
                "tro_giup_phap_ly",
                (scale * rng.random_range(3.0..12.0)).round(),
            ),
            (
                "doan_dong_nguoi_lon_nhat",
                f64::from(rng.random_range(0..30)),
            ),
        ]);
        values.extend(models);
    }
    ReportDraft {
        submission_id: format!("{}-{data_set}-{period}-{variant}", district.code),
        unit_code: district.code.to_string(),
        data_set: data_set.into(),
        period: period.to_string(),
        values: values
            .into_iter()
            .map(|(indicator, value)| DraftValue {
                indicator: indicator.into(),
                value,
                comment: String::new(),
            })
            .collect(),
        narrative: Narrative {
            results: format!(
                "{} duy trì tiếp công dân định kỳ, giải quyết kịp thời đơn thư thuộc thẩm quyền.",
                district.name
            ),
            shortcomings: "Một số hồ sơ đất đai còn chậm do phải xác minh nguồn gốc.".into(),
            proposals: "Đề nghị tỉnh tập huấn thêm về phần mềm một cửa điện tử.".into(),
        },
        prepared_by: format!("Văn phòng HĐND và UBND {}", district.name),
        client_time: Some(Utc::now()),
    }
}
