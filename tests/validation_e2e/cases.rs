//! The broken reports, by family of rules: identity, period, values, consistency, text, and
//! reports with many problems at once. Each case breaks one rule one way, from the valid start.

use super::*;

pub(crate) fn identity_cases() -> Vec<Case> {
    vec![
        case(
            "submission id with a space",
            |d| d.submission_id = "bs02 sept".into(),
            "submission_id",
            "invalid_code",
            &["bs02 sept", "' '"],
        ),
        case(
            "empty submission id",
            |d| d.submission_id = String::new(),
            "submission_id",
            "invalid_code",
            &["empty"],
        ),
        case(
            "unit code with a quote",
            |d| d.unit_code = "BS02'--".into(),
            "unit_code",
            "invalid_code",
            &["BS02'--"],
        ),
        case(
            "unknown unit",
            |d| d.unit_code = "XX99".into(),
            "unit_code",
            "unknown_unit",
            &["XX99"],
        ),
        case(
            "province reporting a district data set",
            |d| d.unit_code = "BS".into(),
            "unit_code",
            "unit_not_expected",
            &["BS", "province", "district", "DVCQ_THANG"],
        ),
        case(
            "data set code with a space",
            |d| d.data_set = "DVCQ THANG".into(),
            "data_set",
            "invalid_code",
            &["DVCQ THANG"],
        ),
        case(
            "unknown data set",
            |d| d.data_set = "NOPE".into(),
            "data_set",
            "unknown_data_set",
            // Names the code received and lists the ones that exist.
            &["NOPE", "DVCQ_THANG", "DVCQ_NAM", "MOT_CUA_THANG"],
        ),
    ]
}

pub(crate) fn period_cases() -> Vec<Case> {
    vec![
        case(
            "period with a dash",
            |d| d.period = "2019-09".into(),
            "period",
            "period_malformed",
            &["2019-09"],
        ),
        case(
            "month 13",
            |d| d.period = "201913".into(),
            "period",
            "period_malformed",
            &["201913", "13"],
        ),
        case(
            "empty period",
            |d| d.period = String::new(),
            "period",
            "period_malformed",
            &["(value: \"\")"],
        ),
        case(
            "quarter for a monthly data set",
            |d| d.period = "2019Q3".into(),
            "period",
            "period_type_mismatch",
            &["2019Q3", "monthly", "quarterly", "DVCQ_THANG"],
        ),
        case(
            "year for a monthly data set",
            |d| d.period = "2019".into(),
            "period",
            "period_type_mismatch",
            &["2019", "yearly", "monthly"],
        ),
        case(
            "period far in the future",
            |d| d.period = "209912".into(),
            "period",
            "period_in_future",
            &["209912"],
        ),
    ]
}

pub(crate) fn value_cases() -> Vec<Case> {
    let first_cong_dan = format!("values[{}]", index_of("tiep_cong_dan"));
    vec![
        case(
            "duplicate indicator",
            |d| push_value(d, "tiep_cong_dan", 2.0),
            appended_field("indicator"),
            "duplicate_indicator",
            &["tiep_cong_dan"],
        )
        // Points at the first occurrence.
        .mentioning([first_cong_dan]),
        case(
            "unknown indicator",
            |d| push_value(d, "tiep_dan", 1.0),
            appended_field("indicator"),
            "unknown_indicator",
            &["tiep_dan"],
        ),
        case(
            "indicator code with a slash",
            |d| push_value(d, "../tiep_dan", 1.0),
            appended_field("indicator"),
            "invalid_code",
            &["../tiep_dan", "'/'"],
        ),
        case(
            "indicators of another data set",
            |d| d.data_set = "MOT_CUA_THANG".into(),
            field_of("tiep_cong_dan", "indicator"),
            "unknown_indicator",
            &["tiep_cong_dan", "not part of data set MOT_CUA_THANG"],
        )
        // Every DVCQ-only indicator is named, not just the first.
        .not_alone(),
        case(
            "NaN",
            |d| set_value(d, "tiep_cong_dan", f64::NAN),
            value_field("tiep_cong_dan"),
            "not_finite",
            &["tiep_cong_dan", "NaN"],
        ),
        case(
            "plus infinity",
            |d| set_value(d, "hs_tiep_nhan", f64::INFINITY),
            value_field("hs_tiep_nhan"),
            "not_finite",
            &["hs_tiep_nhan", "inf"],
        ),
        case(
            "minus infinity",
            |d| set_value(d, "dat_hien", f64::NEG_INFINITY),
            value_field("dat_hien"),
            "not_finite",
            &["dat_hien", "-inf"],
        ),
        case(
            "negative count",
            |d| set_value(d, "tiep_cong_dan", -1.0),
            value_field("tiep_cong_dan"),
            "negative_value",
            &["tiep_cong_dan", "\"-1\""],
        ),
        case(
            "negative decimal",
            |d| set_value(d, "dat_hien", -0.5),
            value_field("dat_hien"),
            "negative_value",
            &["dat_hien", "\"-0.5\""],
        ),
        case(
            "fractional count",
            |d| set_value(d, "tiep_cong_dan", 2.5),
            value_field("tiep_cong_dan"),
            "fractional_value",
            &["tiep_cong_dan", "\"2.5\""],
        ),
        case(
            "fractional đồng",
            |d| set_value(d, "von_huy_dong", 35_000_000_000.5),
            value_field("von_huy_dong"),
            "fractional_value",
            &["von_huy_dong", "35000000000.5"],
        ),
        case(
            "over the sanity bound",
            |d| set_value(d, "hs_tiep_nhan", 5_000_000.0),
            value_field("hs_tiep_nhan"),
            "over_sanity_bound",
            // The value and the bound it broke.
            &["hs_tiep_nhan", "\"5000000\"", "1000000"],
        ),
        case(
            "just over the sanity bound",
            |d| set_value(d, "doi_thoai", 1001.0),
            appended_field("value"),
            "over_sanity_bound",
            &["doi_thoai", "\"1001\"", "1000"],
        ),
        case(
            "required indicator missing",
            |d| d.values.retain(|v| v.indicator != "hs_dung_han"),
            "values",
            "required_indicator_missing",
            &["hs_dung_han", "DVCQ_THANG"],
        ),
    ]
}

/// Reports so big that the aggregator has many violations to return at once.
pub(crate) fn many_violations_cases() -> Vec<Case> {
    vec![
        case(
            "more values than allowed",
            |d| {
                // The 23 indicators of the data set cannot fill more than 500 slots without
                // repeats: the repeats are named too, but the count must be.
                let max = limits().max_values;
                while d.values.len() <= max {
                    push_value(d, "tiep_cong_dan", 2.0);
                }
            },
            "values",
            "too_many_values",
            &[],
        )
        .mentioning([
            format!("{} values", limits().max_values + 1),
            format!("at most {}", limits().max_values),
        ])
        .not_alone(),
        case(
            "two hundred unknown indicators, under the value limit",
            |d| {
                for n in 0..200 {
                    push_value(d, &format!("chi_tieu_{n}"), 1.0);
                }
            },
            appended_field("indicator"),
            "unknown_indicator",
            &["chi_tieu_0"],
        )
        .not_alone(),
    ]
}

/// `too_many_values` on its own: an aggregator whose limit is the size of the valid report,
/// sent one valid value more.
pub(crate) fn too_many_values_case(max_values: usize) -> Case {
    case(
        "one value over a lowered limit",
        |d| push_value(d, "doi_thoai", 3.0),
        "values",
        "too_many_values",
        &[],
    )
    .mentioning([
        format!("{} values", max_values + 1),
        format!("at most {max_values}"),
    ])
}

pub(crate) fn consistency_cases() -> Vec<Case> {
    vec![
        case(
            "petitions split exceeds petitions received",
            // 3 in jurisdiction + 2 forwarded > 4 received.
            |d| set_value(d, "don_tiep_nhan", 4.0),
            value_field("don_thuoc_tham_quyen"),
            "consistency.petitions_split",
            &["don_thuoc_tham_quyen + don_chuyen", "don_tiep_nhan"],
        ),
        case(
            "cases split exceeds cases received",
            // 2 in jurisdiction + 2 forwarded > 3 received (and 3 cases ≤ 5 petitions).
            |d| set_value(d, "vu_viec_tiep_nhan", 3.0),
            value_field("vu_viec_thuoc_tham_quyen"),
            "consistency.cases_split",
            &[
                "vu_viec_thuoc_tham_quyen + vu_viec_chuyen",
                "vu_viec_tiep_nhan",
            ],
        ),
        case(
            "more cases than petitions",
            // 6 cases > 5 petitions (and 2 + 2 ≤ 6).
            |d| set_value(d, "vu_viec_tiep_nhan", 6.0),
            value_field("vu_viec_tiep_nhan"),
            "consistency.cases_not_above_petitions",
            &["vu_viec_tiep_nhan", "don_tiep_nhan"],
        ),
        case(
            "more models recognised than registered",
            // 111 recognised > 110 registered.
            |d| set_value(d, "mo_hinh_cong_nhan", 111.0),
            value_field("mo_hinh_cong_nhan"),
            "consistency.recognised_within_registered",
            &["mo_hinh_cong_nhan", "mo_hinh_dang_ky"],
        ),
        case(
            "more exemplary models than recognised",
            // 32 exemplary > 31 recognised.
            |d| set_value(d, "mo_hinh_tieu_bieu", 32.0),
            value_field("mo_hinh_tieu_bieu"),
            "consistency.exemplary_within_recognised",
            &["mo_hinh_tieu_bieu", "mo_hinh_cong_nhan"],
        ),
        case(
            "registered split does not add up",
            // 74 collective + 35 individual = 109 ≠ 110 registered.
            |d| set_value(d, "mo_hinh_dang_ky_ca_nhan", 35.0),
            value_field("mo_hinh_dang_ky_tap_the"),
            "consistency.registered_split",
            &[
                "mo_hinh_dang_ky_tap_the + mo_hinh_dang_ky_ca_nhan",
                "mo_hinh_dang_ky",
            ],
        ),
        case(
            "registered split above the total",
            |d| set_value(d, "mo_hinh_dang_ky_ca_nhan", 37.0),
            value_field("mo_hinh_dang_ky_tap_the"),
            "consistency.registered_split",
            &[
                "mo_hinh_dang_ky_tap_the + mo_hinh_dang_ky_ca_nhan",
                "mo_hinh_dang_ky",
            ],
        ),
        case(
            "more dossiers on time than resolved",
            // 2589 on time > 2588 resolved.
            |d| set_value(d, "hs_dung_han", 2589.0),
            value_field("hs_dung_han"),
            "consistency.on_time_within_resolved",
            &["hs_dung_han", "hs_giai_quyet"],
        ),
    ]
}

pub(crate) fn text_cases() -> Vec<Case> {
    let text_max = limits().max_text_chars;
    let short_max = limits().max_short_text_chars;
    let over_text = [
        format!("{} characters", text_max + 1),
        format!("at most {text_max}"),
    ];
    let over_short = [
        format!("{} characters", short_max + 1),
        format!("at most {short_max}"),
    ];
    vec![
        case(
            "results over the limit",
            |d| d.narrative.results = long_text(limits().max_text_chars + 1),
            "narrative.results",
            "text_too_long",
            &["narrative.results"],
        )
        .mentioning(over_text.clone()),
        case(
            "shortcomings over the limit",
            |d| d.narrative.shortcomings = long_text(limits().max_text_chars + 1),
            "narrative.shortcomings",
            "text_too_long",
            &["narrative.shortcomings"],
        )
        .mentioning(over_text.clone()),
        case(
            "proposals over the limit",
            |d| d.narrative.proposals = long_text(limits().max_text_chars + 1),
            "narrative.proposals",
            "text_too_long",
            &["narrative.proposals"],
        )
        .mentioning(over_text),
        case(
            "prepared_by over the limit",
            |d| d.prepared_by = long_text(limits().max_short_text_chars + 1),
            "prepared_by",
            "text_too_long",
            &["prepared_by"],
        )
        .mentioning(over_short.clone()),
        case(
            "value comment over the limit",
            |d| {
                let i = index_of("tiep_cong_dan");
                d.values[i].comment = long_text(limits().max_short_text_chars + 1);
            },
            field_of("tiep_cong_dan", "comment"),
            "text_too_long",
            &[],
        )
        .mentioning(over_short),
        case(
            "bell in the results",
            |d| d.narrative.results = "Tổ chức 02 buổi\u{0007} tiếp công dân.".into(),
            "narrative.results",
            "control_character",
            &["U+0007"],
        ),
        case(
            "escape sequence in prepared_by",
            |d| d.prepared_by = "Nguyễn Văn An\u{001b}[2J".into(),
            "prepared_by",
            "control_character",
            &["U+001B"],
        ),
        case(
            "NUL in the proposals",
            |d| d.narrative.proposals = "Đề nghị\u{0000}".into(),
            "narrative.proposals",
            "control_character",
            &["U+0000"],
        ),
        case(
            "C1 control in a comment",
            |d| {
                let i = index_of("hs_tiep_nhan");
                d.values[i].comment = "một cửa\u{0085}".into();
            },
            field_of("hs_tiep_nhan", "comment"),
            "control_character",
            &["U+0085"],
        ),
    ]
}
