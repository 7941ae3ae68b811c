//! Domain types: what a report, a period, a unit and a catalog are, independent of gRPC and SQL.

pub mod catalog;
pub mod codes;
pub mod period;
pub mod report;
pub mod units;
pub mod validation;

pub use catalog::{Aggregation, Catalog, DataSet, Indicator, ValueType};
pub use codes::{DataSetCode, IndicatorCode, SubmissionId, UnitCode};
pub use period::{Calendar, DateWindow, PeriodId, PeriodType};
pub use report::{
    DataValue, DraftValue, FileValues, Narrative, Receipt, ReceiptStatus, Report, ReportDraft,
};
pub use units::{ReportingUnit, UnitTree};
pub use validation::{Checked, ValidationLimits, Violation};
