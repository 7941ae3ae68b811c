//! Gathers everything a yearly review says, from the same analytics an analyst queries (so the
//! review's numbers are the analytics answers) and from the stored reports' narratives.

use crate::analytics::{
    Completeness, IndicatorTable, RankingTable, Scope, SeriesTable, TrendTable,
};
use crate::domain::period::{vietnam_offset, vietnam_today};
use crate::domain::{DateWindow, PeriodId, PeriodType, UnitCode};
use crate::query::{Labels, QueryError, QueryService};
use crate::store::StoreError;
use chrono::{DateTime, NaiveDate, Utc};

/// What to review.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewRequest {
    pub year: i32,
    /// Node of the unit tree; empty for the root (the province).
    pub node: String,
    pub english: bool,
    /// The periodic data set the review is built on.
    pub data_set: String,
}

/// A passage quoted from a unit's narrative.
#[derive(Debug, Clone, PartialEq)]
pub struct Highlight {
    pub unit: UnitCode,
    pub period: String,
    /// "results", "shortcomings" or "proposals".
    pub section: &'static str,
    pub text: String,
}

/// Revisions and warnings of the year's reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QualityNotes {
    /// (unit, period, number of revisions) for reports revised at least once.
    pub revised: Vec<(UnitCode, String, u32)>,
    /// (unit, period, warning) raised at ingest.
    pub warnings: Vec<(UnitCode, String, String)>,
}

#[derive(Debug, Clone)]
pub struct ReviewData {
    pub request: ReviewRequest,
    pub node: UnitCode,
    pub node_name: String,
    pub data_set_name: String,
    pub calendar_is_decree09: bool,
    pub window: DateWindow,
    pub issued_on: NaiveDate,
    pub generated_at: DateTime<Utc>,
    pub change_counter: i64,
    pub completeness: Completeness,
    pub trend: TrendTable,
    pub ranking: RankingTable,
    pub by_unit: IndicatorTable,
    pub monthly: Option<SeriesTable>,
    pub highlights: Vec<Highlight>,
    pub quality: QualityNotes,
    pub labels: Labels,
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
}

/// Longest passage quoted from one narrative section.
const QUOTE_CHARS: usize = 400;

fn quote(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= QUOTE_CHARS {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(QUOTE_CHARS).collect();
        format!("{}…", cut.trim_end())
    }
}

pub async fn gather(
    query: &QueryService,
    request: &ReviewRequest,
    now: DateTime<Utc>,
) -> Result<ReviewData, ReviewError> {
    let catalog = query.catalog().clone();
    let units = query.units().clone();
    let data_set = catalog.data_set(&request.data_set).ok_or_else(|| {
        ReviewError::Invalid(format!("no data set {} in the catalog", request.data_set))
    })?;
    let node = if request.node.is_empty() {
        units.root().clone()
    } else {
        units
            .find(&request.node)
            .cloned()
            .ok_or_else(|| ReviewError::Invalid(format!("no reporting unit {}", request.node)))?
    };
    let year = PeriodId::Year { year: request.year };
    // Read the change counter first: everything below sees at least this much data.
    let change_counter = query.applied_through().await?;
    let scope = Scope {
        data_set: request.data_set.clone(),
        period: year,
        node: node.code.to_string(),
        indicators: Vec::new(),
    };
    let completeness = query.completeness(scope.clone()).await?;
    let trend = query.trend(scope.clone()).await?;
    let ranking = query.ranking(scope.clone(), true).await?;
    let by_unit = query.indicators(scope.clone()).await?;
    let monthly = match data_set.period_type {
        PeriodType::Monthly => Some(
            query
                .series(
                    Scope {
                        period: PeriodId::Month {
                            year: request.year,
                            month: 1,
                        },
                        ..scope.clone()
                    },
                    PeriodId::Month {
                        year: request.year,
                        month: 12,
                    },
                )
                .await?,
        ),
        _ => None,
    };

    // Narratives and data quality, straight from the stored reports.
    let store = query.store();
    let periods = year
        .periods_within(data_set.period_type)
        .unwrap_or_default();
    let mut highlights = Vec::new();
    let mut quality = QualityNotes::default();
    let reporting: Vec<UnitCode> = by_unit
        .rows
        .iter()
        .filter(|r| !r.is_total)
        .map(|r| r.unit.clone())
        .fold(Vec::new(), |mut acc, u| {
            if !acc.contains(&u) {
                acc.push(u);
            }
            acc
        });
    for unit in &reporting {
        let mut latest_narrative = None;
        for period in &periods {
            let p = period.to_string();
            let revisions = store
                .revisions(unit.as_str(), &request.data_set, &p)
                .await?;
            if revisions.len() > 1 {
                quality
                    .revised
                    .push((unit.clone(), p.clone(), revisions.len() as u32));
            }
            for r in &revisions {
                for w in &r.warnings {
                    quality.warnings.push((unit.clone(), p.clone(), w.clone()));
                }
            }
            if let Some(last) = revisions.last() {
                latest_narrative = Some((p.clone(), last.report.narrative.clone()));
            }
        }
        // A yearly report's narrative, when the unit sent one, speaks for the whole year.
        for ds in catalog.data_sets() {
            if ds.period_type == PeriodType::Yearly
                && ds.reporting_levels == data_set.reporting_levels
                && let Some(r) = store
                    .latest(unit.as_str(), ds.code.as_str(), &year.to_string())
                    .await?
            {
                latest_narrative = Some((year.to_string(), r.report.narrative.clone()));
            }
        }
        if let Some((period, narrative)) = latest_narrative {
            for (section, text) in [
                ("results", &narrative.results),
                ("shortcomings", &narrative.shortcomings),
                ("proposals", &narrative.proposals),
            ] {
                if !text.trim().is_empty() {
                    highlights.push(Highlight {
                        unit: unit.clone(),
                        period: period.clone(),
                        section,
                        text: quote(text),
                    });
                }
            }
        }
    }

    let mut indicator_codes: Vec<String> =
        by_unit.indicators.iter().map(|i| i.to_string()).collect();
    indicator_codes.extend(ranking.indicators.iter().map(|i| i.indicator.to_string()));
    let mut unit_codes: Vec<String> = vec![node.code.to_string()];
    unit_codes.extend(reporting.iter().map(|u| u.to_string()));
    let labels = Labels::for_codes(
        &catalog,
        &units,
        indicator_codes.iter().map(|s| s.as_str()),
        unit_codes.iter().map(|s| s.as_str()),
    );
    let window = year.window(data_set.calendar);
    Ok(ReviewData {
        request: request.clone(),
        node: node.code.clone(),
        node_name: node.name.clone(),
        data_set_name: if request.english {
            data_set.name_en.clone()
        } else {
            data_set.name_vi.clone()
        },
        calendar_is_decree09: data_set.calendar == crate::domain::Calendar::Decree09,
        window,
        issued_on: vietnam_today(now),
        generated_at: now.with_timezone(&vietnam_offset()).with_timezone(&Utc),
        change_counter,
        completeness,
        trend,
        ranking,
        by_unit,
        monthly,
        highlights,
        quality,
        labels,
    })
}
