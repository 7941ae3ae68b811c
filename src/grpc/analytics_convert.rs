//! Analytics answers ⇄ protobuf, both ways: the server encodes, `tonghop query` and the demo
//! decode back into the same analytics types.

use super::convert::{from_timestamp, timestamp};
use super::pb;
use crate::analytics::{
    Completeness, CompositeEntry, Counts, IndicatorRanking, IndicatorRow, IndicatorTable,
    LateReport, RankEntry, RankingTable, TrendRow, TrendTable, UnitCompleteness,
};
use crate::domain::catalog::Direction;
use crate::domain::{IndicatorCode, UnitCode};
use crate::query::{IndicatorLabel, Labels, UnitLabel};

/// A code from the server that does not parse: the answer cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("the server sent an unreadable code {0:?}")]
pub struct BadCode(pub String);

fn unit(code: String) -> Result<UnitCode, BadCode> {
    UnitCode::parse(&code).map_err(|_| BadCode(code))
}

fn indicator(code: String) -> Result<IndicatorCode, BadCode> {
    IndicatorCode::parse(&code).map_err(|_| BadCode(code))
}

pub fn labels_to_pb(labels: &Labels) -> (Vec<pb::IndicatorLabel>, Vec<pb::UnitLabel>) {
    (
        labels
            .indicators
            .iter()
            .map(|l| pb::IndicatorLabel {
                code: l.code.clone(),
                name_vi: l.name_vi.clone(),
                name_en: l.name_en.clone(),
                unit_of_measure: l.unit_of_measure.clone(),
                derived: l.derived,
            })
            .collect(),
        labels
            .units
            .iter()
            .map(|u| pb::UnitLabel {
                code: u.code.clone(),
                name: u.name.clone(),
                population: u.population,
            })
            .collect(),
    )
}

pub fn labels_from_pb(indicators: Vec<pb::IndicatorLabel>, units: Vec<pb::UnitLabel>) -> Labels {
    Labels {
        indicators: indicators
            .into_iter()
            .map(|l| IndicatorLabel {
                code: l.code,
                name_vi: l.name_vi,
                name_en: l.name_en,
                unit_of_measure: l.unit_of_measure,
                derived: l.derived,
            })
            .collect(),
        units: units
            .into_iter()
            .map(|u| UnitLabel {
                code: u.code,
                name: u.name,
                population: u.population,
            })
            .collect(),
    }
}

pub fn indicators_to_pb(t: &IndicatorTable, labels: &Labels) -> pb::IndicatorsResponse {
    let (indicators, units) = labels_to_pb(labels);
    pb::IndicatorsResponse {
        data_set: t.data_set.clone(),
        period: t.period.clone(),
        node: t.node.to_string(),
        values: t
            .rows
            .iter()
            .map(|r| pb::IndicatorValue {
                unit: r.unit.to_string(),
                is_total: r.is_total,
                indicator: r.indicator.to_string(),
                value: r.value,
                reason: r.reason.clone().unwrap_or_default(),
                reports_received: r.reports_received,
                reports_expected: r.reports_expected,
                derived: r.derived,
            })
            .collect(),
        indicators,
        units,
    }
}

pub fn indicators_from_pb(r: pb::IndicatorsResponse) -> Result<(IndicatorTable, Labels), BadCode> {
    let labels = labels_from_pb(r.indicators, r.units);
    let rows = r
        .values
        .into_iter()
        .map(|v| {
            Ok(IndicatorRow {
                unit: unit(v.unit)?,
                is_total: v.is_total,
                indicator: indicator(v.indicator)?,
                derived: v.derived,
                value: v.value,
                reason: (!v.reason.is_empty()).then_some(v.reason),
                reports_received: v.reports_received,
                reports_expected: v.reports_expected,
            })
        })
        .collect::<Result<Vec<_>, BadCode>>()?;
    let mut order: Vec<IndicatorCode> = Vec::new();
    for row in rows.iter().filter(|r| r.is_total) {
        if !order.contains(&row.indicator) {
            order.push(row.indicator.clone());
        }
    }
    Ok((
        IndicatorTable {
            data_set: r.data_set,
            period: r.period,
            node: unit(r.node)?,
            indicators: order,
            rows,
        },
        labels,
    ))
}

fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::HigherIsBetter => "higher_is_better",
        Direction::LowerIsBetter => "lower_is_better",
    }
}

pub fn ranking_to_pb(t: &RankingTable, labels: &Labels) -> pb::RankingResponse {
    let (indicator_labels, units) = labels_to_pb(labels);
    pb::RankingResponse {
        data_set: t.data_set.clone(),
        period: t.period.clone(),
        previous_period: t.previous_period.clone(),
        node: t.node.to_string(),
        indicators: t
            .indicators
            .iter()
            .map(|i| pb::IndicatorRanking {
                indicator: i.indicator.to_string(),
                direction: direction_name(i.direction).into(),
                weight: i.weight,
                per_capita: i.per_capita,
                entries: i
                    .entries
                    .iter()
                    .map(|e| pb::RankEntry {
                        unit: e.unit.to_string(),
                        value: e.value,
                        rank: e.rank,
                        missing: e.missing,
                    })
                    .collect(),
            })
            .collect(),
        composite: t
            .composite
            .iter()
            .map(|c| pb::CompositeEntry {
                unit: c.unit.to_string(),
                score: c.score,
                rank: c.rank,
                previous_rank: c.previous_rank,
                rank_change: c.rank_change,
            })
            .collect(),
        indicator_labels,
        units,
    }
}

pub fn ranking_from_pb(r: pb::RankingResponse) -> Result<(RankingTable, Labels), BadCode> {
    let labels = labels_from_pb(r.indicator_labels, r.units);
    let indicators = r
        .indicators
        .into_iter()
        .map(|i| {
            Ok(IndicatorRanking {
                indicator: indicator(i.indicator)?,
                direction: if i.direction == "lower_is_better" {
                    Direction::LowerIsBetter
                } else {
                    Direction::HigherIsBetter
                },
                weight: i.weight,
                per_capita: i.per_capita,
                entries: i
                    .entries
                    .into_iter()
                    .map(|e| {
                        Ok(RankEntry {
                            unit: unit(e.unit)?,
                            value: e.value,
                            rank: e.rank,
                            missing: e.missing,
                        })
                    })
                    .collect::<Result<_, BadCode>>()?,
            })
        })
        .collect::<Result<_, BadCode>>()?;
    let composite = r
        .composite
        .into_iter()
        .map(|c| {
            Ok(CompositeEntry {
                unit: unit(c.unit)?,
                score: c.score,
                rank: c.rank,
                previous_rank: c.previous_rank,
                rank_change: c.rank_change,
            })
        })
        .collect::<Result<_, BadCode>>()?;
    Ok((
        RankingTable {
            data_set: r.data_set,
            period: r.period,
            previous_period: r.previous_period,
            node: unit(r.node)?,
            indicators,
            composite,
        },
        labels,
    ))
}

fn counts_to_pb(c: &Counts) -> pb::Counts {
    pb::Counts {
        expected: c.expected,
        received: c.received,
        on_time: c.on_time,
        late: c.late,
        corrected_after_deadline: c.corrected_after_deadline,
    }
}

fn counts_from_pb(c: Option<pb::Counts>) -> Counts {
    let c = c.unwrap_or_default();
    Counts {
        expected: c.expected,
        received: c.received,
        on_time: c.on_time,
        late: c.late,
        corrected_after_deadline: c.corrected_after_deadline,
    }
}

pub fn completeness_to_pb(t: &Completeness, labels: &Labels) -> pb::CompletenessResponse {
    let (_, unit_labels) = labels_to_pb(labels);
    pb::CompletenessResponse {
        data_set: t.data_set.clone(),
        period: t.period.clone(),
        node: t.node.to_string(),
        periods: t.periods.clone(),
        total: Some(counts_to_pb(&t.total)),
        units: t
            .units
            .iter()
            .map(|u| pb::UnitCompleteness {
                unit: u.unit.to_string(),
                counts: Some(counts_to_pb(&u.counts)),
            })
            .collect(),
        missing: t
            .missing
            .iter()
            .map(|(u, p)| pb::MissingReport {
                unit: u.to_string(),
                period: p.clone(),
            })
            .collect(),
        late: t
            .late
            .iter()
            .map(|l| pb::LateReport {
                unit: l.unit.to_string(),
                period: l.period.clone(),
                received_at: Some(timestamp(l.received_at)),
                deadline: Some(timestamp(l.deadline)),
                days_late: l.days_late,
            })
            .collect(),
        unit_labels,
    }
}

pub fn completeness_from_pb(
    r: pb::CompletenessResponse,
) -> Result<(Completeness, Labels), BadCode> {
    let labels = labels_from_pb(Vec::new(), r.unit_labels);
    let late = r
        .late
        .into_iter()
        .map(|l| {
            Ok(LateReport {
                unit: unit(l.unit)?,
                period: l.period,
                received_at: l
                    .received_at
                    .as_ref()
                    .and_then(from_timestamp)
                    .unwrap_or_default(),
                deadline: l
                    .deadline
                    .as_ref()
                    .and_then(from_timestamp)
                    .unwrap_or_default(),
                days_late: l.days_late,
            })
        })
        .collect::<Result<_, BadCode>>()?;
    Ok((
        Completeness {
            data_set: r.data_set,
            period: r.period,
            node: unit(r.node)?,
            periods: r.periods,
            total: counts_from_pb(r.total),
            units: r
                .units
                .into_iter()
                .map(|u| {
                    Ok(UnitCompleteness {
                        unit: unit(u.unit)?,
                        counts: counts_from_pb(u.counts),
                    })
                })
                .collect::<Result<_, BadCode>>()?,
            missing: r
                .missing
                .into_iter()
                .map(|m| Ok((unit(m.unit)?, m.period)))
                .collect::<Result<_, BadCode>>()?,
            late,
        },
        labels,
    ))
}

pub fn trend_to_pb(t: &TrendTable, labels: &Labels) -> pb::TrendResponse {
    let (indicators, units) = labels_to_pb(labels);
    pb::TrendResponse {
        data_set: t.data_set.clone(),
        period: t.period.clone(),
        previous_period: t.previous_period.clone(),
        year_before_period: t.year_before_period.clone(),
        node: t.node.to_string(),
        rows: t
            .rows
            .iter()
            .map(|r| pb::TrendRow {
                unit: r.unit.to_string(),
                is_total: r.is_total,
                indicator: r.indicator.to_string(),
                value: r.value,
                previous: r.previous,
                change: r.change,
                change_pct: r.change_pct,
                year_before: r.year_before,
                change_yoy: r.change_yoy,
                change_yoy_pct: r.change_yoy_pct,
            })
            .collect(),
        indicators,
        units,
    }
}

pub fn trend_from_pb(r: pb::TrendResponse) -> Result<(TrendTable, Labels), BadCode> {
    let labels = labels_from_pb(r.indicators, r.units);
    let rows = r
        .rows
        .into_iter()
        .map(|t| {
            Ok(TrendRow {
                unit: unit(t.unit)?,
                is_total: t.is_total,
                indicator: indicator(t.indicator)?,
                value: t.value,
                previous: t.previous,
                change: t.change,
                change_pct: t.change_pct,
                year_before: t.year_before,
                change_yoy: t.change_yoy,
                change_yoy_pct: t.change_yoy_pct,
            })
        })
        .collect::<Result<_, BadCode>>()?;
    Ok((
        TrendTable {
            data_set: r.data_set,
            period: r.period,
            previous_period: r.previous_period,
            year_before_period: r.year_before_period,
            node: unit(r.node)?,
            rows,
        },
        labels,
    ))
}
