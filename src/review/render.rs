//! The review as Markdown and as one self-contained HTML page (inline CSS, charts as inline
//! SVG drawn with plotters), from the same composed document.

use super::compose::{Block, Chart, Doc, DocTable};
use plotters::prelude::*;

fn md_escape(cell: &str) -> String {
    cell.replace('|', "\\|").replace('\n', " ")
}

fn md_table(t: &DocTable) -> String {
    let mut out = format!("*{}*\n\n", t.caption);
    out.push_str(&format!(
        "| {} |\n",
        t.headers
            .iter()
            .map(|h| md_escape(h))
            .collect::<Vec<_>>()
            .join(" | ")
    ));
    out.push_str(&format!(
        "|{}|\n",
        t.right
            .iter()
            .map(|r| if *r { " ---: " } else { " --- " })
            .collect::<Vec<_>>()
            .join("|")
    ));
    for row in &t.rows {
        out.push_str(&format!(
            "| {} |\n",
            row.iter()
                .map(|c| md_escape(c))
                .collect::<Vec<_>>()
                .join(" | ")
        ));
    }
    out
}

pub fn markdown(doc: &Doc) -> String {
    let mut out = format!("# {}\n\n", doc.title.to_uppercase());
    for m in &doc.meta {
        out.push_str(&format!("- {m}\n"));
    }
    for s in &doc.sections {
        out.push_str(&format!("\n## {}\n\n", s.heading));
        for b in &s.blocks {
            match b {
                Block::Para(p) => out.push_str(&format!("{p}\n\n")),
                Block::Bullets(items) => {
                    for i in items {
                        out.push_str(&format!("- {i}\n"));
                    }
                    out.push('\n');
                }
                Block::Table(t) => {
                    out.push_str(&md_table(t));
                    out.push('\n');
                }
                // Charts live in the HTML edition; the numbers behind them are in the tables
                // and CSV files.
                Block::Chart(_) => {}
                Block::Quote { source, text } => {
                    out.push_str(&format!(
                        "> {}\n>\n> — *{source}*\n\n",
                        text.replace('\n', "\n> ")
                    ));
                }
            }
        }
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const CSS: &str = "body{font-family:'Times New Roman',serif;max-width:60em;margin:2em auto;\
padding:0 1em;color:#111;line-height:1.45}h1{text-align:center;font-size:1.5em;\
text-transform:uppercase}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #999}\
.meta{text-align:center;color:#333}table{border-collapse:collapse;margin:.6em 0 1.2em;\
font-size:.92em}caption{font-style:italic;text-align:left;padding:.2em 0}th,td{border:1px solid \
#999;padding:.25em .5em}th{background:#eee}td.n{text-align:right;font-variant-numeric:\
tabular-nums}blockquote{margin:.8em 1.5em;padding:.3em .8em;border-left:3px solid #b22}\
blockquote footer{font-size:.85em;color:#444}figure{margin:1em 0}svg{max-width:100%;height:auto}";

fn html_table(t: &DocTable) -> String {
    let mut out = format!("<table><caption>{}</caption><thead><tr>", esc(&t.caption));
    for h in &t.headers {
        out.push_str(&format!("<th>{}</th>", esc(h)));
    }
    out.push_str("</tr></thead><tbody>");
    for row in &t.rows {
        out.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            let class = if t.right.get(i).copied().unwrap_or(false) {
                " class=\"n\""
            } else {
                ""
            };
            out.push_str(&format!("<td{class}>{}</td>", esc(c)));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>\n");
    out
}

pub fn html(doc: &Doc) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>{CSS}</style></head><body>\n<h1>{}</h1>\n<p class=\"meta\">{}</p>\n",
        doc.lang,
        esc(&doc.title),
        esc(&doc.title),
        doc.meta
            .iter()
            .map(|m| esc(m))
            .collect::<Vec<_>>()
            .join("<br>")
    );
    for s in &doc.sections {
        out.push_str(&format!("<h2>{}</h2>\n", esc(&s.heading)));
        for b in &s.blocks {
            match b {
                Block::Para(p) => out.push_str(&format!("<p>{}</p>\n", esc(p))),
                Block::Bullets(items) => {
                    out.push_str("<ul>");
                    for i in items {
                        out.push_str(&format!("<li>{}</li>", esc(i)));
                    }
                    out.push_str("</ul>\n");
                }
                Block::Table(t) => out.push_str(&html_table(t)),
                Block::Chart(c) => {
                    let svg = svg_chart(c).unwrap_or_else(|e| {
                        format!("<p><em>chart unavailable: {}</em></p>", esc(&e))
                    });
                    out.push_str(&format!("<figure>{svg}</figure>\n"));
                }
                Block::Quote { source, text } => out.push_str(&format!(
                    "<blockquote><p>{}</p><footer>{}</footer></blockquote>\n",
                    esc(text),
                    esc(source)
                )),
            }
        }
    }
    out.push_str("</body></html>\n");
    out
}

/// Draws a chart as an SVG fragment.
pub fn svg_chart(chart: &Chart) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 340)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        match chart {
            Chart::Bars {
                title,
                labels,
                values,
            } => {
                let n = labels.len().max(1);
                let top = values.iter().cloned().fold(0.0_f64, f64::max).max(1.0) * 1.1;
                let mut ctx = ChartBuilder::on(&root)
                    .caption(title, ("sans-serif", 18))
                    .margin(12)
                    .x_label_area_size(34)
                    .y_label_area_size(44)
                    .build_cartesian_2d((0..n).into_segmented(), 0.0..top)
                    .map_err(|e| e.to_string())?;
                let names = labels.clone();
                ctx.configure_mesh()
                    .disable_x_mesh()
                    .x_labels(n)
                    .x_label_formatter(&|x| match x {
                        SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
                        _ => String::new(),
                    })
                    .draw()
                    .map_err(|e| e.to_string())?;
                ctx.draw_series(values.iter().enumerate().map(|(i, v)| {
                    let mut bar = Rectangle::new(
                        [
                            (SegmentValue::Exact(i), 0.0),
                            (SegmentValue::Exact(i + 1), *v),
                        ],
                        RGBColor(178, 34, 34).filled(),
                    );
                    bar.set_margin(0, 0, 6, 6);
                    bar
                }))
                .map_err(|e| e.to_string())?;
            }
            Chart::Lines {
                title,
                x_labels,
                series,
            } => {
                let all: Vec<f64> = series
                    .iter()
                    .flat_map(|(_, v)| v.iter().flatten())
                    .copied()
                    .collect();
                let lo = all.iter().cloned().fold(f64::INFINITY, f64::min);
                let hi = all.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let (lo, hi) = if lo.is_finite() && hi.is_finite() {
                    let pad = ((hi - lo) * 0.1).max(0.5);
                    (lo - pad, hi + pad)
                } else {
                    (0.0, 100.0)
                };
                let n = x_labels.len().max(1);
                let mut ctx = ChartBuilder::on(&root)
                    .caption(title, ("sans-serif", 18))
                    .margin(12)
                    .x_label_area_size(30)
                    .y_label_area_size(44)
                    .build_cartesian_2d(0..n.saturating_sub(1).max(1), lo..hi)
                    .map_err(|e| e.to_string())?;
                let names = x_labels.clone();
                ctx.configure_mesh()
                    .x_labels(n)
                    .x_label_formatter(&|i| names.get(*i).cloned().unwrap_or_default())
                    .draw()
                    .map_err(|e| e.to_string())?;
                let colours = [
                    RGBColor(178, 34, 34),
                    RGBColor(30, 80, 160),
                    RGBColor(40, 130, 60),
                ];
                for (k, (name, values)) in series.iter().enumerate() {
                    let colour = colours[k % colours.len()];
                    let points: Vec<(usize, f64)> = values
                        .iter()
                        .enumerate()
                        .filter_map(|(i, v)| v.map(|v| (i, v)))
                        .collect();
                    ctx.draw_series(LineSeries::new(points, colour.stroke_width(2)))
                        .map_err(|e| e.to_string())?
                        .label(name.clone())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                        });
                }
                ctx.configure_series_labels()
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .draw()
                    .map_err(|e| e.to_string())?;
            }
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}
