//! prost message ⇄ domain type conversions. Structural only: the catalog checks happen in
//! `domain::validation`, once.

use super::pb;
use crate::domain::{
    Calendar, Catalog, DataSet, DateWindow, DraftValue, Narrative, PeriodType, Receipt,
    ReceiptStatus, ReportDraft, ReportingUnit, SubmissionId, Violation,
};
use chrono::{DateTime, NaiveDate, Utc};

pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub fn from_timestamp(t: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
}

pub fn draft_from_pb(report: pb::Report) -> ReportDraft {
    let narrative = report.narrative.unwrap_or_default();
    ReportDraft {
        submission_id: report.submission_id,
        unit_code: report.unit_code,
        data_set: report.data_set,
        period: report.period,
        values: report
            .values
            .into_iter()
            .map(|v| DraftValue {
                indicator: v.indicator,
                value: v.value,
                comment: v.comment,
            })
            .collect(),
        narrative: Narrative {
            results: narrative.results,
            shortcomings: narrative.shortcomings,
            proposals: narrative.proposals,
        },
        prepared_by: report.prepared_by,
        client_time: report.client_time.as_ref().and_then(from_timestamp),
    }
}

pub fn draft_to_pb(draft: &ReportDraft) -> pb::Report {
    pb::Report {
        submission_id: draft.submission_id.clone(),
        unit_code: draft.unit_code.clone(),
        data_set: draft.data_set.clone(),
        period: draft.period.clone(),
        values: draft
            .values
            .iter()
            .map(|v| pb::DataValue {
                indicator: v.indicator.clone(),
                value: v.value,
                comment: v.comment.clone(),
            })
            .collect(),
        narrative: Some(pb::Narrative {
            results: draft.narrative.results.clone(),
            shortcomings: draft.narrative.shortcomings.clone(),
            proposals: draft.narrative.proposals.clone(),
        }),
        prepared_by: draft.prepared_by.clone(),
        client_time: draft.client_time.map(timestamp),
    }
}

pub fn receipt_to_pb(receipt: &Receipt) -> pb::Receipt {
    pb::Receipt {
        submission_id: receipt.submission_id.to_string(),
        revision: receipt.revision,
        status: match receipt.status {
            ReceiptStatus::New => pb::ReceiptStatus::New,
            ReceiptStatus::Revision => pb::ReceiptStatus::Revision,
            ReceiptStatus::Duplicate => pb::ReceiptStatus::Duplicate,
        } as i32,
        received_at: Some(timestamp(receipt.received_at)),
        deadline: Some(timestamp(receipt.deadline)),
        on_time: receipt.on_time,
        warnings: receipt.warnings.clone(),
        window_start: receipt.window.start.to_string(),
        window_end: receipt.window.end.to_string(),
    }
}

/// Reads a receipt the server sent; `None` if it is not one this version understands.
pub fn receipt_from_pb(receipt: pb::Receipt) -> Option<Receipt> {
    let status = match pb::ReceiptStatus::try_from(receipt.status).ok()? {
        pb::ReceiptStatus::New => ReceiptStatus::New,
        pb::ReceiptStatus::Revision => ReceiptStatus::Revision,
        pb::ReceiptStatus::Duplicate => ReceiptStatus::Duplicate,
        pb::ReceiptStatus::Unspecified => return None,
    };
    Some(Receipt {
        submission_id: SubmissionId::parse(&receipt.submission_id).ok()?,
        revision: receipt.revision,
        status,
        received_at: from_timestamp(receipt.received_at.as_ref()?)?,
        deadline: from_timestamp(receipt.deadline.as_ref()?)?,
        on_time: receipt.on_time,
        warnings: receipt.warnings,
        window: DateWindow {
            start: receipt.window_start.parse::<NaiveDate>().ok()?,
            end: receipt.window_end.parse::<NaiveDate>().ok()?,
        },
    })
}

pub fn violation_to_pb(v: &Violation) -> pb::FieldViolation {
    pb::FieldViolation {
        field: v.field.clone(),
        value: v.value.clone(),
        rule: v.rule.clone(),
        description: v.description.clone(),
    }
}

pub fn violation_from_pb(v: pb::FieldViolation) -> Violation {
    Violation {
        field: v.field,
        value: v.value,
        rule: v.rule,
        description: v.description,
    }
}

fn period_type_to_pb(t: PeriodType) -> pb::PeriodType {
    match t {
        PeriodType::Monthly => pb::PeriodType::Monthly,
        PeriodType::Quarterly => pb::PeriodType::Quarterly,
        PeriodType::SixMonthly => pb::PeriodType::SixMonthly,
        PeriodType::NineMonthly => pb::PeriodType::NineMonthly,
        PeriodType::Yearly => pb::PeriodType::Yearly,
    }
}

pub fn data_set_to_pb(catalog: &Catalog, ds: &DataSet) -> pb::DataSet {
    pb::DataSet {
        code: ds.code.to_string(),
        name_vi: ds.name_vi.clone(),
        name_en: ds.name_en.clone(),
        period_type: period_type_to_pb(ds.period_type) as i32,
        calendar: match ds.calendar {
            Calendar::Months => pb::Calendar::Months,
            Calendar::Decree09 => pb::Calendar::Decree09,
        } as i32,
        grace_days: ds.grace_days,
        indicators: ds
            .indicators
            .iter()
            .filter_map(|item| {
                let ind = catalog.indicator(&item.indicator)?;
                Some(pb::DataSetIndicator {
                    code: ind.code.to_string(),
                    name_vi: ind.name_vi.clone(),
                    name_en: ind.name_en.clone(),
                    unit_of_measure: ind.unit_of_measure.clone(),
                    value_type: ind.value_type.as_str().to_owned(),
                    aggregation: ind.aggregation.as_str().to_owned(),
                    required: item.required,
                    max_value: ind.max_value,
                })
            })
            .collect(),
        reporting_levels: ds.reporting_levels.clone(),
    }
}

pub fn unit_to_pb(unit: &ReportingUnit) -> pb::ReportingUnit {
    pb::ReportingUnit {
        code: unit.code.to_string(),
        name: unit.name.clone(),
        parent: unit
            .parent
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        level: unit.level.clone(),
        population: unit.population,
    }
}
