//! Turns the gathered data into the review's text, in the shape of a Vietnamese administrative
//! report (Vietnamese by default, English on request). The same numbers as CSV tables are in
//! `tables`.

use super::gather::ReviewData;
use crate::format::{change, date, number, tr, value};
use crate::query::Labels;

#[derive(Debug, Clone, PartialEq)]
pub struct DocTable {
    pub caption: String,
    pub headers: Vec<String>,
    /// Right-aligned (numeric) columns.
    pub right: Vec<bool>,
    pub rows: Vec<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Chart {
    /// One bar per label.
    Bars {
        title: String,
        labels: Vec<String>,
        values: Vec<f64>,
    },
    /// One line per series over the x labels.
    Lines {
        title: String,
        x_labels: Vec<String>,
        series: Vec<(String, Vec<Option<f64>>)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Para(String),
    Bullets(Vec<String>),
    Table(DocTable),
    Chart(Chart),
    Quote { source: String, text: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub heading: String,
    pub blocks: Vec<Block>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    pub title: String,
    pub lang: &'static str,
    pub meta: Vec<String>,
    pub sections: Vec<Section>,
}

/// Indicators whose monthly series the review charts.
const CHARTED_RATES: [&str; 2] = ["ty_le_dung_han", "ty_le_giai_quyet"];

fn pct(v: Option<f64>, en: bool) -> String {
    value(v, "%", en)
}

/// What every section's wording needs: the language, and the names of units and indicators.
struct Words<'a> {
    en: bool,
    labels: &'a Labels,
}

impl Words<'_> {
    fn unit(&self, code: &str) -> String {
        self.labels.unit_name(code).to_owned()
    }

    fn indicator(&self, code: &str) -> String {
        self.labels.indicator_name(code, self.en).to_owned()
    }

    fn unit_of_measure(&self, code: &str) -> String {
        self.labels
            .indicator(code)
            .map(|l| l.unit_of_measure.clone())
            .unwrap_or_default()
    }
}

pub fn compose(d: &ReviewData) -> Doc {
    let en = d.request.english;
    let year = d.request.year;
    let w = Words {
        en,
        labels: &d.labels,
    };
    let title = if en {
        format!("Review of the government mass-mobilisation work of {year}")
    } else {
        format!("Báo cáo tổng kết công tác dân vận chính quyền năm {year}")
    };
    let window = format!(
        "{} {} {} {}{}",
        tr(en, "từ", "from"),
        date(d.window.start, en),
        tr(en, "đến", "to"),
        date(d.window.end, en),
        if d.calendar_is_decree09 {
            tr(
                en,
                " (theo Nghị định 09/2019/NĐ-CP)",
                " (Decree 09/2019/ND-CP window)",
            )
        } else {
            tr(en, " (năm dương lịch)", " (calendar year)")
        }
    );
    let meta = vec![
        format!(
            "{}: {}",
            tr(en, "Đơn vị ban hành", "Issued by"),
            d.node_name
        ),
        format!("{}: {}", tr(en, "Ngày", "Date"), date(d.issued_on, en)),
        format!("{}: {window}", tr(en, "Kỳ báo cáo", "Reporting window")),
        format!(
            "{}: {} ({}); {} {}",
            tr(en, "Nguồn số liệu", "Data"),
            d.data_set_name,
            d.request.data_set,
            tr(en, "dữ liệu đến thay đổi số", "store change counter"),
            d.change_counter
        ),
    ];
    Doc {
        title,
        lang: if en { "en" } else { "vi" },
        meta,
        sections: vec![
            discipline(d, &w),
            results(d, &w),
            ranking(d, &w),
            highlights(d, &w),
            data_quality(d, &w),
            appendix(d, &w),
        ],
    }
}

/// Section I, reporting discipline: who sent what, on time or late, and what is missing.
fn discipline(d: &ReviewData, w: &Words<'_>) -> Section {
    let en = w.en;
    let c = &d.completeness;
    let mut blocks = vec![Block::Para(format!(
        "{} {} {} {} {} ({} {}), {} {} {} ({} {}).",
        tr(
            en,
            "Trong năm, các đơn vị đã nộp",
            "During the year the units sent"
        ),
        c.total.received,
        tr(en, "trên", "of"),
        c.total.expected,
        tr(en, "báo cáo phải nộp", "expected reports"),
        tr(en, "đầy đủ", "completeness"),
        pct(c.total.completeness(), en),
        tr(en, "trong đó", "of which"),
        c.total.on_time,
        tr(en, "báo cáo đúng hạn", "on time"),
        tr(en, "kịp thời", "timeliness"),
        pct(c.total.timeliness(), en),
    ))];
    let mut table = DocTable {
        caption: tr(en, "Tình hình nộp báo cáo theo đơn vị", "Reports by unit").into(),
        headers: [
            tr(en, "Đơn vị", "Unit"),
            tr(en, "Phải nộp", "Expected"),
            tr(en, "Đã nộp", "Received"),
            tr(en, "Đúng hạn", "On time"),
            tr(en, "Trễ hạn", "Late"),
            tr(en, "Sửa sau hạn", "Corrected late"),
            tr(en, "Đầy đủ", "Complete"),
            tr(en, "Kịp thời", "Timely"),
        ]
        .map(String::from)
        .to_vec(),
        right: vec![false, true, true, true, true, true, true, true],
        rows: Vec::new(),
    };
    for u in &c.units {
        let k = &u.counts;
        table.rows.push(vec![
            w.unit(u.unit.as_str()),
            k.expected.to_string(),
            k.received.to_string(),
            k.on_time.to_string(),
            k.late.to_string(),
            k.corrected_after_deadline.to_string(),
            pct(k.completeness(), en),
            pct(k.timeliness(), en),
        ]);
    }
    blocks.push(Block::Table(table));
    if !c.late.is_empty() {
        blocks.push(Block::Para(
            tr(en, "Báo cáo nộp trễ hạn:", "Late reports:").into(),
        ));
        blocks.push(Block::Bullets(
            c.late
                .iter()
                .map(|l| {
                    format!(
                        "{} — {} ({} {})",
                        w.unit(l.unit.as_str()),
                        l.period,
                        l.days_late,
                        tr(en, "ngày", "day(s) late")
                    )
                })
                .collect(),
        ));
    }
    if !c.missing.is_empty() {
        blocks.push(Block::Para(
            tr(en, "Báo cáo chưa nộp:", "Missing reports:").into(),
        ));
        blocks.push(Block::Bullets(
            c.missing
                .iter()
                .map(|(u, p)| format!("{} — {p}", w.unit(u.as_str())))
                .collect(),
        ));
    }
    Section {
        heading: tr(
            en,
            "I. Tình hình thực hiện chế độ báo cáo",
            "I. Reporting discipline",
        )
        .into(),
        blocks,
    }
}

/// Section II, results against the indicators, with the change against the previous year.
fn results(d: &ReviewData, w: &Words<'_>) -> Section {
    let en = w.en;
    let year = d.request.year;
    let mut totals = DocTable {
        caption: tr(en, "Kết quả các chỉ tiêu toàn tỉnh", "Province totals").into(),
        headers: vec![
            tr(en, "Chỉ tiêu", "Indicator").into(),
            tr(en, "ĐVT", "Unit").into(),
            format!("{} {year}", tr(en, "Năm", "Year")),
            format!("{} {}", tr(en, "Năm", "Year"), year - 1),
            tr(en, "Tăng/giảm", "Change").into(),
            "%".into(),
        ],
        right: vec![false, false, true, true, true, true],
        rows: Vec::new(),
    };
    for r in d.trend.rows.iter().filter(|r| r.is_total) {
        let code = r.indicator.as_str();
        let u = w.unit_of_measure(code);
        totals.rows.push(vec![
            w.indicator(code),
            u.clone(),
            value(r.value, &u, en),
            value(r.year_before, &u, en),
            change(r.change_yoy, false, en),
            change(r.change_yoy_pct, true, en),
        ]);
    }
    let mut blocks = vec![Block::Table(totals)];
    if let Some(series) = &d.monthly {
        let lines: Vec<(String, Vec<Option<f64>>)> = CHARTED_RATES
            .iter()
            .filter_map(|code| {
                let i = series.indicators.iter().position(|c| c.as_str() == *code)?;
                Some((
                    w.indicator(code),
                    series.values.iter().map(|row| row[i]).collect(),
                ))
            })
            .collect();
        if !lines.is_empty() {
            blocks.push(Block::Chart(Chart::Lines {
                title: tr(
                    en,
                    "Diễn biến các tỷ lệ chính theo tháng (%)",
                    "Key rates by month (%)",
                )
                .into(),
                x_labels: series.periods.iter().map(|p| p[4..].to_string()).collect(),
                series: lines,
            }));
        }
    }
    Section {
        heading: tr(en, "II. Kết quả thực hiện các chỉ tiêu", "II. Results").into(),
        blocks,
    }
}

/// Section III, the ranking of the units.
fn ranking(d: &ReviewData, w: &Words<'_>) -> Section {
    let en = w.en;
    let rk = &d.ranking;
    let mut composite = DocTable {
        caption: tr(en, "Xếp hạng tổng hợp các đơn vị", "Composite ranking").into(),
        headers: [
            tr(en, "Hạng", "Rank"),
            tr(en, "Đơn vị", "Unit"),
            tr(en, "Điểm", "Score"),
            tr(en, "Hạng năm trước", "Previous rank"),
            tr(en, "Thay đổi", "Change"),
        ]
        .map(String::from)
        .to_vec(),
        right: vec![true, false, true, true, true],
        rows: Vec::new(),
    };
    for e in &rk.composite {
        composite.rows.push(vec![
            e.rank.to_string(),
            w.unit(e.unit.as_str()),
            number(e.score, 1, en),
            e.previous_rank
                .map(|r| r.to_string())
                .unwrap_or_else(|| "–".into()),
            match e.rank_change {
                Some(x) if x > 0 => format!("▲{x}"),
                Some(x) if x < 0 => format!("▼{}", -x),
                Some(_) => "=".into(),
                None => "–".into(),
            },
        ]);
    }
    let mut blocks = vec![
        Block::Para(
            tr(
                en,
                "Điểm tổng hợp là bình quân có trọng số của các chỉ tiêu xếp hạng, mỗi chỉ tiêu \
                 được quy về thang 0–100 giữa các đơn vị (chỉ tiêu tính theo 10.000 dân khi danh \
                 mục quy định).",
                "The composite score is the weighted mean of the ranked indicators, each \
                 normalised to 0–100 across the units (per 10,000 inhabitants where the catalog \
                 says so).",
            )
            .into(),
        ),
        Block::Table(composite),
        Block::Chart(Chart::Bars {
            title: tr(en, "Điểm tổng hợp theo đơn vị", "Composite score by unit").into(),
            labels: rk.composite.iter().map(|e| e.unit.to_string()).collect(),
            values: rk.composite.iter().map(|e| e.score).collect(),
        }),
    ];
    let mut extremes = DocTable {
        caption: tr(
            en,
            "Đơn vị dẫn đầu và cuối bảng theo chỉ tiêu",
            "Top and bottom units",
        )
        .into(),
        headers: [
            tr(en, "Chỉ tiêu", "Indicator"),
            tr(en, "Dẫn đầu", "Top"),
            tr(en, "Giá trị", "Value"),
            tr(en, "Cuối bảng", "Bottom"),
            tr(en, "Giá trị", "Value"),
        ]
        .map(String::from)
        .to_vec(),
        right: vec![false, false, true, false, true],
        rows: Vec::new(),
    };
    for i in &rk.indicators {
        let with_value: Vec<_> = i.entries.iter().filter(|e| !e.missing).collect();
        let (Some(top), Some(bottom)) = (with_value.first(), with_value.last()) else {
            continue;
        };
        let suffix = if i.per_capita {
            tr(en, " (/10.000 dân)", " (/10,000 inhabitants)")
        } else {
            ""
        };
        let u = if i.per_capita {
            String::new()
        } else {
            w.unit_of_measure(i.indicator.as_str())
        };
        extremes.rows.push(vec![
            format!("{}{suffix}", w.indicator(i.indicator.as_str())),
            w.unit(top.unit.as_str()),
            value(top.value.map(|v| (v * 100.0).round() / 100.0), &u, en),
            w.unit(bottom.unit.as_str()),
            value(bottom.value.map(|v| (v * 100.0).round() / 100.0), &u, en),
        ]);
    }
    blocks.push(Block::Table(extremes));
    Section {
        heading: tr(en, "III. Xếp hạng các đơn vị", "III. Ranking of the units").into(),
        blocks,
    }
}

/// Section IV, highlights from the units' own words.
fn highlights(d: &ReviewData, w: &Words<'_>) -> Section {
    let en = w.en;
    let section_name = |s: &str| match s {
        "results" => tr(en, "Kết quả", "Results"),
        "shortcomings" => tr(en, "Tồn tại, hạn chế", "Shortcomings"),
        _ => tr(en, "Kiến nghị", "Proposals"),
    };
    let mut blocks: Vec<Block> = d
        .highlights
        .iter()
        .map(|h| Block::Quote {
            source: format!(
                "{}, {} {} — {}",
                w.unit(h.unit.as_str()),
                tr(en, "báo cáo kỳ", "report"),
                h.period,
                section_name(h.section)
            ),
            text: h.text.clone(),
        })
        .collect();
    if blocks.is_empty() {
        blocks.push(Block::Para(
            tr(
                en,
                "Các đơn vị không gửi phần thuyết minh.",
                "No unit sent a narrative.",
            )
            .into(),
        ));
    }
    Section {
        heading: tr(
            en,
            "IV. Kết quả nổi bật, tồn tại và kiến nghị (trích báo cáo các đơn vị)",
            "IV. Highlights, shortcomings and proposals (from the units' reports)",
        )
        .into(),
        blocks,
    }
}

/// Section V, data-quality notes: revisions and warnings at ingest.
fn data_quality(d: &ReviewData, w: &Words<'_>) -> Section {
    let en = w.en;
    let q = &d.quality;
    let mut bullets: Vec<String> = q
        .revised
        .iter()
        .map(|(u, p, n)| {
            format!(
                "{} {p}: {n} {}",
                w.unit(u.as_str()),
                tr(en, "lần gửi (đã điều chỉnh)", "revisions")
            )
        })
        .collect();
    bullets.extend(
        q.warnings
            .iter()
            .map(|(u, p, warning)| format!("{} {p}: {warning}", w.unit(u.as_str()))),
    );
    Section {
        heading: tr(
            en,
            "V. Ghi chú về chất lượng số liệu",
            "V. Data-quality notes",
        )
        .into(),
        blocks: if bullets.is_empty() {
            vec![Block::Para(
                tr(
                    en,
                    "Không có báo cáo điều chỉnh hay cảnh báo.",
                    "No revisions or warnings.",
                )
                .into(),
            )]
        } else {
            vec![
                Block::Para(format!(
                    "{} {} {}; {} {}.",
                    q.revised.len(),
                    tr(en, "báo cáo được điều chỉnh", "reports were revised"),
                    tr(en, "(mọi lần gửi đều được lưu)", "(every revision is kept)"),
                    q.warnings.len(),
                    tr(en, "cảnh báo khi tiếp nhận", "warnings at ingest")
                )),
                Block::Bullets(bullets),
            ]
        },
    }
}

/// The appendix: every indicator of every unit.
fn appendix(d: &ReviewData, w: &Words<'_>) -> Section {
    let en = w.en;
    let mut appendix = DocTable {
        caption: tr(en, "Số liệu chi tiết theo đơn vị", "Values by unit").into(),
        headers: vec![tr(en, "Chỉ tiêu", "Indicator").into()],
        right: vec![false],
        rows: Vec::new(),
    };
    let units: Vec<String> = d
        .completeness
        .units
        .iter()
        .map(|u| u.unit.to_string())
        .collect();
    for u in &units {
        appendix.headers.push(u.clone());
        appendix.right.push(true);
    }
    let cells = d.by_unit.unit_cells();
    for code in &d.by_unit.indicators {
        let u_of = w.unit_of_measure(code.as_str());
        let mut row = vec![w.indicator(code.as_str())];
        for u in &units {
            row.push(value(
                cells
                    .get(&(u.as_str(), code.as_str()))
                    .and_then(|r| r.value),
                &u_of,
                en,
            ));
        }
        appendix.rows.push(row);
    }
    Section {
        heading: tr(
            en,
            "Phụ lục: Số liệu chi tiết theo đơn vị",
            "Appendix: values by unit",
        )
        .into(),
        blocks: vec![Block::Table(appendix)],
    }
}
