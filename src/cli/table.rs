//! Plain-text tables and numbers as Vietnamese administrative reports print them (2.600;
//! 96,2 %), or in English style (2,600; 96.2 %), for `tonghop query` and the demo.

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

/// Columns aligned on display width (Vietnamese text is precomposed: one char, one column).
pub struct Table {
    headers: Vec<String>,
    /// Right-align this column (numbers).
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str], right: &[bool]) -> Self {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            right: right.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(width(cell));
                }
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let w = widths.get(i).copied().unwrap_or(0);
                let pad = " ".repeat(w.saturating_sub(width(cell)));
                if i > 0 {
                    out.push_str("  ");
                }
                if self.right.get(i).copied().unwrap_or(false) {
                    out.push_str(&pad);
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    out.push_str(&pad);
                }
            }
            out.trim_end().to_owned() + "\n"
        };
        let mut out = line(&self.headers);
        let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
        out.push_str(&line(&rule));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
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

    #[test]
    fn tables_align_vietnamese_text() {
        let mut t = Table::new(&["Đơn vị", "Số"], &[false, true]);
        t.row(vec!["Huyện Đông Hòa".into(), "2.600".into()]);
        t.row(vec!["TP".into(), "5".into()]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2], "Huyện Đông Hòa  2.600");
        assert_eq!(lines[3], "TP                  5");
    }
}
