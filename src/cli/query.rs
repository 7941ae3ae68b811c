//! `tonghop query indicators|ranking|completeness|trend|export`: analytics from a running
//! aggregator as aligned tables (Vietnamese names by default, `--lang en`), CSV or JSON.

use super::table::{Table, change, number, tr, value};
use super::{OutputFormat, QueryArgs, QueryKind};
use crate::analytics::{Completeness, IndicatorTable, RankingTable, Scope, TrendTable};
use crate::domain::PeriodId;
use crate::format::csv_text;
use crate::grpc::client::{AggregatorClient, SubmitFailure};
use crate::query::{Labelled, Labels};
use std::process::ExitCode;

pub async fn run(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let period = PeriodId::parse(&args.period)
        .map_err(|e| anyhow::anyhow!("--period {:?} {e}", args.period))?;
    let scope = Scope {
        data_set: args.data_set.clone(),
        period,
        node: args.unit.clone().unwrap_or_default(),
        indicators: args.indicator.clone(),
    };
    let english = args.lang == "en";
    let mut client =
        AggregatorClient::connect_with(&args.endpoint, args.tls.tls()?.as_ref()).await?;
    let outcome = match args.kind {
        QueryKind::Indicators => client.indicators(&scope).await.map(|t| {
            emit(
                &args.format,
                &t,
                || render_indicators(&t, english, args.by_unit),
                || indicators_csv(&t.answer),
            )
        }),
        QueryKind::Ranking => client
            .ranking(&scope, args.raw.then_some(false))
            .await
            .map(|t| {
                emit(
                    &args.format,
                    &t,
                    || render_ranking(&t, english, !args.indicator.is_empty()),
                    || ranking_csv(&t.answer),
                )
            }),
        QueryKind::Completeness => client.completeness(&scope).await.map(|t| {
            emit(
                &args.format,
                &t,
                || render_completeness(&t, english),
                || completeness_csv(&t.answer),
            )
        }),
        QueryKind::Trend => client.trend(&scope).await.map(|t| {
            emit(
                &args.format,
                &t,
                || render_trend(&t, english, args.by_unit),
                || trend_csv(&t.answer),
            )
        }),
        QueryKind::Export => {
            let through = args.through.clone().unwrap_or_else(|| args.period.clone());
            client.export(&scope, &through).await.map(|rows| {
                let mut out = String::from("unit,period,indicator,value,revision\n");
                for r in &rows {
                    out.push_str(&format!(
                        "{},{},{},{},{}\n",
                        r.unit, r.period, r.indicator, r.value, r.revision
                    ));
                }
                match args.format {
                    OutputFormat::Json => serde_json::to_string_pretty(&rows).unwrap_or_default(),
                    _ => out,
                }
            })
        }
    };
    match outcome {
        Ok(text) => {
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            eprint!("{}", describe(&failure));
            Ok(ExitCode::from(super::EXIT_FAILURE))
        }
    }
}

fn describe(f: &SubmitFailure) -> String {
    let mut out = format!("query failed ({:?}): {}\n", f.code, f.message);
    for v in &f.violations {
        out.push_str(&format!("  {}  [{}]  {}\n", v.field, v.rule, v.description));
    }
    out
}

fn emit<T: serde::Serialize>(
    format: &OutputFormat,
    answer: &T,
    table: impl FnOnce() -> String,
    csv: impl FnOnce() -> String,
) -> String {
    match format {
        OutputFormat::Table => table(),
        OutputFormat::Csv => csv(),
        OutputFormat::Json => serde_json::to_string_pretty(answer).unwrap_or_default(),
    }
}

fn unit_of(labels: &Labels, code: &str) -> String {
    labels
        .indicator(code)
        .map(|l| l.unit_of_measure.clone())
        .unwrap_or_default()
}

pub fn render_indicators(t: &Labelled<IndicatorTable>, english: bool, by_unit: bool) -> String {
    let (table, labels) = (&t.answer, &t.labels);
    let units: Vec<&str> = if by_unit {
        let mut seen = Vec::new();
        for r in table.rows.iter().filter(|r| !r.is_total) {
            if !seen.contains(&r.unit.as_str()) {
                seen.push(r.unit.as_str());
            }
        }
        seen
    } else {
        Vec::new()
    };
    let node_name = labels.unit_name(table.node.as_str()).to_owned();
    let mut headers = vec![
        tr(english, "Chỉ tiêu", "Indicator").to_owned(),
        tr(english, "Đơn vị tính", "Unit").to_owned(),
        node_name.clone(),
    ];
    headers.extend(units.iter().map(|u| u.to_string()));
    let header_refs: Vec<&str> = headers.iter().map(|h| h.as_str()).collect();
    let mut right = vec![false, false, true];
    right.extend(units.iter().map(|_| true));
    let mut out = Table::new(&header_refs, &right);
    let cells = table.unit_cells();
    for code in &table.indicators {
        let uom = unit_of(labels, code.as_str());
        let mut row = vec![
            labels.indicator_name(code.as_str(), english).to_owned(),
            uom.clone(),
            value(
                table.total(code.as_str()).and_then(|r| r.value),
                &uom,
                english,
            ),
        ];
        for u in &units {
            row.push(value(
                cells.get(&(*u, code.as_str())).and_then(|r| r.value),
                &uom,
                english,
            ));
        }
        out.row(row);
    }
    let (got, of) = table
        .rows
        .iter()
        .find(|r| r.is_total)
        .map(|r| (r.reports_received, r.reports_expected))
        .unwrap_or((0, 0));
    format!(
        "{} {} — {}, {} {} ({} {}/{})\n\n{}",
        tr(english, "Chỉ tiêu", "Indicators of"),
        node_name,
        table.data_set,
        tr(english, "kỳ", "period"),
        table.period,
        tr(english, "báo cáo đã nhận", "reports received"),
        got,
        of,
        out.render()
    )
}

pub fn render_ranking(t: &Labelled<RankingTable>, english: bool, per_indicator: bool) -> String {
    let (table, labels) = (&t.answer, &t.labels);
    let mut text = format!(
        "{} — {} {}, {} {}\n\n",
        tr(english, "Xếp hạng tổng hợp", "Composite ranking"),
        table.data_set,
        table.period,
        tr(english, "so với kỳ", "compared with"),
        table.previous_period
    );
    let mut out = Table::new(
        &[
            tr(english, "Hạng", "Rank"),
            tr(english, "Đơn vị", "Unit"),
            tr(english, "Điểm", "Score"),
            tr(english, "Hạng kỳ trước", "Previous"),
            tr(english, "Thay đổi", "Change"),
        ],
        &[true, false, true, true, true],
    );
    for c in &table.composite {
        out.row(vec![
            c.rank.to_string(),
            labels.unit_name(c.unit.as_str()).to_owned(),
            number(c.score, 1, english),
            c.previous_rank
                .map(|r| r.to_string())
                .unwrap_or_else(|| "–".into()),
            match c.rank_change {
                Some(d) if d > 0 => format!("▲{d}"),
                Some(d) if d < 0 => format!("▼{}", -d),
                Some(_) => "=".into(),
                None => "–".into(),
            },
        ]);
    }
    text.push_str(&out.render());
    if per_indicator || table.composite.is_empty() {
        for i in &table.indicators {
            let uom = if i.per_capita {
                tr(english, "/10.000 dân", "/10,000 inhabitants").to_owned()
            } else {
                unit_of(labels, i.indicator.as_str())
            };
            text.push_str(&format!(
                "\n{} ({uom}; {} {})\n",
                labels.indicator_name(i.indicator.as_str(), english),
                tr(english, "trọng số", "weight"),
                number(i.weight, 1, english)
            ));
            let mut t = Table::new(
                &[
                    tr(english, "Hạng", "Rank"),
                    tr(english, "Đơn vị", "Unit"),
                    tr(english, "Giá trị", "Value"),
                ],
                &[true, false, true],
            );
            for e in &i.entries {
                let shown = if e.missing {
                    tr(english, "chưa báo cáo", "not reported").to_owned()
                } else {
                    value(e.value.map(|v| (v * 100.0).round() / 100.0), "", english)
                };
                t.row(vec![
                    e.rank.to_string(),
                    labels.unit_name(e.unit.as_str()).to_owned(),
                    shown,
                ]);
            }
            text.push_str(&t.render());
        }
    }
    text
}

pub fn render_completeness(t: &Labelled<Completeness>, english: bool) -> String {
    let (c, labels) = (&t.answer, &t.labels);
    let mut out = Table::new(
        &[
            tr(english, "Đơn vị", "Unit"),
            tr(english, "Phải nộp", "Expected"),
            tr(english, "Đã nộp", "Received"),
            tr(english, "Đúng hạn", "On time"),
            tr(english, "Trễ hạn", "Late"),
            tr(english, "Đầy đủ", "Complete"),
            tr(english, "Kịp thời", "Timely"),
        ],
        &[false, true, true, true, true, true, true],
    );
    let pct = |v: Option<f64>| value(v, "%", english);
    for u in c
        .units
        .iter()
        .map(|u| (labels.unit_name(u.unit.as_str()).to_owned(), &u.counts))
        .chain(std::iter::once((
            labels.unit_name(c.node.as_str()).to_owned(),
            &c.total,
        )))
    {
        let (name, k) = u;
        out.row(vec![
            name,
            k.expected.to_string(),
            k.received.to_string(),
            k.on_time.to_string(),
            k.late.to_string(),
            pct(k.completeness()),
            pct(k.timeliness()),
        ]);
    }
    let mut text = format!(
        "{} — {} {} ({} {})\n\n{}",
        tr(
            english,
            "Tình hình nộp báo cáo",
            "Reporting completeness and timeliness"
        ),
        c.data_set,
        c.period,
        c.periods.len(),
        tr(english, "kỳ báo cáo", "reporting periods"),
        out.render()
    );
    if !c.missing.is_empty() {
        text.push_str(&format!("\n{}:\n", tr(english, "Chưa nộp", "Missing")));
        for (u, p) in &c.missing {
            text.push_str(&format!("  {} {p}\n", labels.unit_name(u.as_str())));
        }
    }
    if !c.late.is_empty() {
        text.push_str(&format!("\n{}:\n", tr(english, "Nộp trễ", "Late")));
        for l in &c.late {
            text.push_str(&format!(
                "  {} {}: {} {}\n",
                labels.unit_name(l.unit.as_str()),
                l.period,
                l.days_late,
                tr(english, "ngày", "day(s)")
            ));
        }
    }
    text
}

pub fn render_trend(t: &Labelled<TrendTable>, english: bool, by_unit: bool) -> String {
    let (table, labels) = (&t.answer, &t.labels);
    let mut out = Table::new(
        &[
            tr(english, "Đơn vị", "Unit"),
            tr(english, "Chỉ tiêu", "Indicator"),
            &table.period,
            &table.previous_period,
            "±",
            "%",
            &table.year_before_period,
            "±",
            "%",
        ],
        &[false, false, true, true, true, true, true, true, true],
    );
    for r in table.rows.iter().filter(|r| by_unit || r.is_total) {
        let uom = unit_of(labels, r.indicator.as_str());
        out.row(vec![
            labels.unit_name(r.unit.as_str()).to_owned(),
            labels
                .indicator_name(r.indicator.as_str(), english)
                .to_owned(),
            value(r.value, &uom, english),
            value(r.previous, &uom, english),
            change(r.change, false, english),
            change(r.change_pct, true, english),
            value(r.year_before, &uom, english),
            change(r.change_yoy, false, english),
            change(r.change_yoy_pct, true, english),
        ]);
    }
    format!(
        "{} — {} {}\n\n{}",
        tr(english, "Xu hướng", "Trend"),
        table.data_set,
        table.period,
        out.render()
    )
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn indicators_csv(t: &IndicatorTable) -> String {
    csv_text(
        &[
            "unit",
            "is_total",
            "indicator",
            "value",
            "reason",
            "reports_received",
            "reports_expected",
        ],
        t.rows
            .iter()
            .map(|r| {
                vec![
                    r.unit.to_string(),
                    r.is_total.to_string(),
                    r.indicator.to_string(),
                    opt(r.value),
                    r.reason.clone().unwrap_or_default(),
                    r.reports_received.to_string(),
                    r.reports_expected.to_string(),
                ]
            })
            .collect(),
    )
}

fn ranking_csv(t: &RankingTable) -> String {
    let mut rows: Vec<Vec<String>> = t
        .composite
        .iter()
        .map(|c| {
            vec![
                "composite".into(),
                c.unit.to_string(),
                c.score.to_string(),
                c.rank.to_string(),
                "false".into(),
                c.previous_rank.map(|r| r.to_string()).unwrap_or_default(),
                c.rank_change.map(|r| r.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    for i in &t.indicators {
        for e in &i.entries {
            rows.push(vec![
                i.indicator.to_string(),
                e.unit.to_string(),
                opt(e.value),
                e.rank.to_string(),
                e.missing.to_string(),
                String::new(),
                String::new(),
            ]);
        }
    }
    csv_text(
        &[
            "indicator",
            "unit",
            "value",
            "rank",
            "missing",
            "previous_rank",
            "rank_change",
        ],
        rows,
    )
}

fn completeness_csv(c: &Completeness) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (unit, k) in c
        .units
        .iter()
        .map(|u| (u.unit.to_string(), &u.counts))
        .chain(std::iter::once((c.node.to_string(), &c.total)))
    {
        rows.push(vec![
            unit,
            k.expected.to_string(),
            k.received.to_string(),
            k.on_time.to_string(),
            k.late.to_string(),
            k.corrected_after_deadline.to_string(),
            opt(k.completeness()),
            opt(k.timeliness()),
        ]);
    }
    csv_text(
        &[
            "unit",
            "expected",
            "received",
            "on_time",
            "late",
            "corrected_after_deadline",
            "completeness_pct",
            "timeliness_pct",
        ],
        rows,
    )
}

fn trend_csv(t: &TrendTable) -> String {
    csv_text(
        &[
            "unit",
            "is_total",
            "indicator",
            "value",
            "previous",
            "change",
            "change_pct",
            "year_before",
            "change_yoy",
            "change_yoy_pct",
        ],
        t.rows
            .iter()
            .map(|r| {
                vec![
                    r.unit.to_string(),
                    r.is_total.to_string(),
                    r.indicator.to_string(),
                    opt(r.value),
                    opt(r.previous),
                    opt(r.change),
                    opt(r.change_pct),
                    opt(r.year_before),
                    opt(r.change_yoy),
                    opt(r.change_yoy_pct),
                ]
            })
            .collect(),
    )
}
