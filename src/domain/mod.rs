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

/// The maps looked up for every report received (the catalog's indicators, the unit tree, the
/// report's own values): foldhash rather than std's SipHash. Under the ingest benchmark SipHash
/// was about 1.2 % of the server's CPU samples, and validation as a whole fell from about 6 % to
/// about 4 % with foldhash. The only keys a client chooses are a report's own indicator codes,
/// at most `max_values` of them, so even a crafted set of colliding codes costs a bounded,
/// small amount; SipHash's resistance to such sets buys nothing here.
pub(crate) type CodeMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
