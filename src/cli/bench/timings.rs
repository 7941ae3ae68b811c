//! The timed queries of a scenario once its store and read model are loaded (`measure` times
//! the loading itself): (a) a province's indicators and ranking, (b) a national rollup, (c) the
//! same answers in SQL, compared number by number, and (d) freshness through the real ingest
//! path.

use super::*;

fn year_scope(scenario: &Scenario, year: i32) -> Scope {
    Scope {
        data_set: DATA_SET.into(),
        period: PeriodId::Year { year },
        node: scenario.root(),
        indicators: Vec::new(),
    }
}

pub(super) async fn province(
    scenario: &Scenario,
    query: &QueryService,
    baseline: &mut crate::store::bench::Baseline,
    store: &Arc<dyn Store>,
    args: &AnalyticsBenchArgs,
    figures: &mut Figures,
    label: &str,
) -> anyhow::Result<()> {
    let scope = year_scope(scenario, PROVINCE_YEAR);
    eprintln!("  {label}: (a) indicators and ranking, {} runs", args.runs);
    // The warm-up run's answers are the ones checked against SQL.
    let table = query.indicators(scope.clone()).await?;
    let ranking = query.ranking(scope.clone(), true).await?;
    for _ in 0..args.runs {
        let started = Instant::now();
        let t = query.indicators(scope.clone()).await?;
        let middle = Instant::now();
        let r = query.ranking(scope.clone(), true).await?;
        let done = Instant::now();
        figures.indicators.push(middle - started);
        figures.ranking.push(done - middle);
        figures.polars.push(done - started);
        std::hint::black_box((t, r));
    }

    eprintln!("  {label}: (c) the same in SQL, {} runs", args.sql_runs);
    let (first, last) = (format!("{PROVINCE_YEAR}01"), format!("{PROVINCE_YEAR}12"));
    let rows = baseline.province(DATA_SET, &first, &last).await?;
    for _ in 0..args.sql_runs {
        let started = Instant::now();
        let again = baseline.province(DATA_SET, &first, &last).await?;
        figures.sql.push(started.elapsed());
        std::hint::black_box(again);
    }
    figures.agreement = Some(compare(
        &province_from_polars(&table, &ranking),
        &province_from_sql(&rows),
    ));

    if args.freshness_trials > 0 {
        eprintln!(
            "  {label}: (d) freshness, {} reports through the ingest path",
            args.freshness_trials
        );
        freshness(
            scenario,
            query,
            store,
            args.freshness_trials,
            figures,
            |_| scope.clone(),
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn national(
    scenario: &Scenario,
    query: &QueryService,
    baseline: &mut crate::store::bench::Baseline,
    store: &Arc<dyn Store>,
    args: &AnalyticsBenchArgs,
    figures: &mut Figures,
    label: &str,
) -> anyhow::Result<()> {
    let scope = year_scope(scenario, scenario.first_year());
    let through = PeriodId::Year {
        year: scenario.last_year(),
    };
    eprintln!(
        "  {label}: (b) yearly national totals, {} runs",
        args.national_runs
    );
    let mut answer: Option<SeriesTable> = None;
    for _ in 0..args.national_runs {
        let started = Instant::now();
        let table = query.series(scope.clone(), through).await?;
        figures.polars.push(started.elapsed());
        answer.get_or_insert(table);
    }
    let answer = answer.context("no national run")?;

    eprintln!(
        "  {label}: (c) the same in SQL, {} run(s)",
        args.national_sql_runs
    );
    let (first, last) = (
        format!("{}01", scenario.first_year()),
        format!("{}12", scenario.last_year()),
    );
    let mut rows: Option<Vec<SeriesRow>> = None;
    for _ in 0..args.national_sql_runs.max(1) {
        let started = Instant::now();
        let answer = baseline.series(DATA_SET, &first, &last).await?;
        figures.sql.push(started.elapsed());
        rows.get_or_insert(answer);
    }
    let rows = rows.context("no national SQL run")?;
    figures.agreement = Some(compare(
        &series_from_polars(&answer),
        &series_from_sql(&rows),
    ));

    // Freshness at national size: the read model holds every value, so a revision costs a
    // filter over all of them. Fewer trials; the province figure is the headline one.
    let trials = args.freshness_trials.min(5);
    if trials > 0 {
        eprintln!("  {label}: (d) freshness at national size, {trials} reports");
        let units = scenario.units.clone();
        let month = scenario.months.last().copied().context("no months")?;
        freshness(scenario, query, store, trials, figures, |code| Scope {
            data_set: DATA_SET.into(),
            period: month,
            node: units
                .find(code)
                .and_then(|u| u.parent.as_ref())
                .map_or_else(|| units.root().code.to_string(), |p| p.to_string()),
            indicators: Vec::new(),
        })
        .await?;
    }
    Ok(())
}

/// Sends revisions of stored reports through `Ingestor::submit` and times, from each
/// acknowledgement, how long until an answer of the query service contains the new value.
async fn freshness(
    scenario: &Scenario,
    query: &QueryService,
    store: &Arc<dyn Store>,
    trials: usize,
    figures: &mut Figures,
    scope_for: impl Fn(&str) -> Scope,
) -> anyhow::Result<()> {
    let ingestor = Ingestor::new(
        scenario.catalog.clone(),
        scenario.units.clone(),
        store.clone(),
        ValidationLimits::default(),
    );
    let period = scenario.months.last().copied().context("no months")?;
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    for trial in 0..trials {
        // Spread the trials over the units (7919 is prime, so they do not repeat early).
        let unit = &scenario.reporting[(trial * 7919) % scenario.reporting.len()].0;
        let scope = scope_for(unit);
        let stored = store
            .latest(unit, DATA_SET, &period.to_string())
            .await?
            .with_context(|| format!("no stored report of {unit} for {period}"))?;
        let old = stored
            .report
            .value(FRESH_INDICATOR)
            .context("stored report lacks the freshness indicator")?;
        let new = old + 1.0 + trial as f64;
        let before = query
            .indicators(scope.clone())
            .await?
            .value(unit, FRESH_INDICATOR)
            .and_then(|r| r.value)
            .context("the unit has no value before the trial")?;
        let expected = before - old + new;
        let draft = ReportDraft {
            submission_id: format!("bench-fresh-{nonce}-{trial}"),
            unit_code: unit.clone(),
            data_set: DATA_SET.into(),
            period: period.to_string(),
            values: stored
                .report
                .values
                .iter()
                .map(|v| DraftValue {
                    indicator: v.indicator.to_string(),
                    value: if v.indicator.as_str() == FRESH_INDICATOR {
                        new
                    } else {
                        v.value
                    },
                    comment: String::new(),
                })
                .collect(),
            narrative: Narrative {
                results: "Benchmark revision".into(),
                ..Narrative::default()
            },
            prepared_by: "tonghop bench".into(),
            client_time: None,
        };
        let sent = Instant::now();
        ingestor
            .submit(draft)
            .await
            .context("a freshness report was refused")?;
        let acknowledged = Instant::now();
        loop {
            let answer = query.indicators(scope.clone()).await?;
            let seen = answer.value(unit, FRESH_INDICATOR).and_then(|r| r.value);
            if seen == Some(expected) {
                break;
            }
            if acknowledged.elapsed() > FRESH_PATIENCE {
                bail!(
                    "a report acknowledged {} s ago is still not in the answer ({seen:?}, \
                     expected {expected})",
                    FRESH_PATIENCE.as_secs()
                );
            }
        }
        figures.fresh.push(acknowledged.elapsed());
        figures.submit.push(acknowledged - sent);
    }
    Ok(())
}
