//! Analytics: pure, synchronous polars functions over the in-memory read model. Callers run
//! them through `spawn_blocking`; nothing here touches the network or the store, and nothing
//! outside this module builds a polars expression.

mod completeness;
mod model;
mod ranking;
mod rollup;
mod series;
mod settle;
mod trend;

pub use completeness::{Completeness, Counts, LateReport, UnitCompleteness, completeness};
pub use model::{Applied, ChangeBatch, Dictionary, ReadModel, ReportMeta, month_range};
pub use ranking::{CompositeEntry, IndicatorRanking, RankEntry, RankingTable, ranking};
pub use rollup::{IndicatorRow, IndicatorTable, Scope, indicators};
pub use series::{SeriesTable, series};
pub use trend::{ExportRow, TrendRow, TrendTable, export, trend};

use crate::domain::PeriodType;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalyticsError {
    #[error("no data set {0} in the catalog")]
    UnknownDataSet(String),
    #[error("no reporting unit {0} in the unit tree")]
    UnknownUnit(String),
    #[error("indicator {indicator} is neither part of data set {data_set} nor derived from it")]
    UnknownIndicator { indicator: String, data_set: String },
    #[error(
        "period {period} is not made of whole {period_type} periods, the periods of data set \
         {data_set}; ask for a coarser period"
    )]
    PeriodNotAligned {
        period: String,
        data_set: String,
        period_type: PeriodType,
    },
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error("analytics engine failed: {0}")]
    Engine(String),
}

impl From<polars::prelude::PolarsError> for AnalyticsError {
    fn from(e: polars::prelude::PolarsError) -> Self {
        AnalyticsError::Engine(e.to_string())
    }
}
