//! Numbers as Vietnamese administrative reports print them (2.600; 96,2 %), or in English
//! style (2,600; 96.2 %): shared by `tonghop query` and the yearly review.

/// Picks the Vietnamese or English text.
pub fn tr<'a>(english: bool, vi: &'a str, en: &'a str) -> &'a str {
    if english { en } else { vi }
}

/// `1234567.891` → "1.234.567,89" (vi) or "1,234,567.89" (en), with `decimals` places.
pub fn number(value: f64, decimals: usize, english: bool) -> String {
    let (thousands, point) = if english { (',', '.') } else { ('.', ',') };
    let text = format!("{:.*}", decimals, value.abs());
    let (int_part, frac_part) = match text.split_once('.') {
        Some((i, f)) => (i.to_owned(), Some(f.to_owned())),
        None => (text.clone(), None),
    };
    let mut grouped = String::new();
    for (i, c) in int_part.chars().enumerate() {
        if i > 0 && (int_part.len() - i) % 3 == 0 {
            grouped.push(thousands);
        }
        grouped.push(c);
    }
    let sign = if value < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') {
        "-"
    } else {
        ""
    };
    match frac_part {
        Some(f) => format!("{sign}{grouped}{point}{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// A value in its unit: whole numbers without decimals, rates with one, others with two.
pub fn value(v: Option<f64>, unit_of_measure: &str, english: bool) -> String {
    match v {
        None => "–".into(),
        Some(x) if unit_of_measure == "%" => format!("{} %", number(x, 1, english)),
        Some(x) if x.fract() == 0.0 => number(x, 0, english),
        Some(x) => number(x, 2, english),
    }
}

/// A signed change: "+12", "-3,5 %".
pub fn change(v: Option<f64>, percent: bool, english: bool) -> String {
    match v {
        None => "–".into(),
        Some(x) => {
            let decimals = if percent || x.fract() != 0.0 { 1 } else { 0 };
            let sign = if x > 0.0 { "+" } else { "" };
            let suffix = if percent { " %" } else { "" };
            format!("{sign}{}{suffix}", number(x, decimals, english))
        }
    }
}

/// A CSV document: a header row, then the rows (fields quoted where needed).
pub fn csv_text(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let _ = writer.write_record(header);
    for row in rows {
        let _ = writer.write_record(row);
    }
    // Writing into memory cannot fail, and the fields are UTF-8 strings.
    writer
        .into_inner()
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
}

/// A date as the report writes it: 20/12/2019 (vi) or 2019-12-20 (en).
pub fn date(d: chrono::NaiveDate, english: bool) -> String {
    if english {
        d.format("%Y-%m-%d").to_string()
    } else {
        d.format("%d/%m/%Y").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_both_styles() {
        assert_eq!(number(2600.0, 0, false), "2.600");
        assert_eq!(number(2600.0, 0, true), "2,600");
        assert_eq!(number(96.2, 1, false), "96,2");
        assert_eq!(number(35_000_000_000.0, 0, false), "35.000.000.000");
        assert_eq!(number(-1234.5, 2, true), "-1,234.50");
        assert_eq!(number(999.0, 0, false), "999");
        assert_eq!(value(Some(96.24), "%", false), "96,2 %");
        assert_eq!(value(None, "%", false), "–");
        assert_eq!(change(Some(-3.5), true, false), "-3,5 %");
        assert_eq!(change(Some(12.0), false, true), "+12");
    }
}
