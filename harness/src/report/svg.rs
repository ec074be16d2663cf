//! Drawing the chart as inline SVG: a header of lane names (sticky while the chart scrolls)
//! and the body: the gutter of steps on the left with their lines, one lifeline per lane, an
//! arrow per message, marks, a band per step (the failing one highlighted), the time at the
//! gutter's edge. Sizes are fixed per row and lane, so a long run makes a taller chart that scrolls,
//! never a smaller one.

use std::fmt::Write as _;

use super::chart::Chart;
use super::lanes::Item;
use super::page::esc;
use super::record::{RunRecord, StepOutcome};

const GUTTER_W: usize = 360;
const LANE_W: usize = 190;
const LEDGER_W: usize = 300;
const ROW_H: usize = 20;
const HEAD_H: usize = 42;
const PAD: usize = 6;
/// Longest text drawn in the gutter or beside a mark (the whole text is its tooltip).
const GUTTER_CHARS: usize = 42;
const MARK_CHARS: usize = 60;

struct Geometry {
    node_lanes: usize,
    ledger: Option<usize>,
}

impl Geometry {
    fn x(&self, lane: usize) -> usize {
        if Some(lane) == self.ledger {
            GUTTER_W + self.node_lanes * LANE_W + 24
        } else {
            GUTTER_W + lane * LANE_W + LANE_W / 2
        }
    }

    fn width(&self) -> usize {
        GUTTER_W + self.node_lanes * LANE_W + if self.ledger.is_some() { LEDGER_W } else { 0 }
    }
}

fn y(row: usize) -> usize {
    PAD + row * ROW_H + ROW_H / 2
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut out: String = text.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

/// The chart: `<div class="chart-scroll">` holding the header and the body.
pub fn render(chart: &Chart, record: &RunRecord) -> String {
    let g = Geometry {
        node_lanes: chart.lanes.len() - usize::from(chart.ledger_lane.is_some()),
        ledger: chart.ledger_lane,
    };
    let width = g.width();
    let height = PAD * 2 + chart.rows.len().max(1) * ROW_H;
    let mut out = String::new();
    let _ = write!(
        out,
        "<div class=\"chart-scroll\" id=\"chart\">\n<svg class=\"chart-head\" width=\"{width}\" \
         height=\"{HEAD_H}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <rect class=\"head-bg\" x=\"0\" y=\"0\" width=\"{width}\" height=\"{HEAD_H}\"/>\
         <text class=\"gutter-head\" x=\"8\" y=\"18\">step · line in the file</text>"
    );
    for (i, lane) in chart.lanes.iter().enumerate() {
        let x = g.x(i);
        let anchor = if Some(i) == g.ledger {
            "start"
        } else {
            "middle"
        };
        let _ = write!(
            out,
            "<text class=\"lane-head\" x=\"{x}\" y=\"18\" text-anchor=\"{anchor}\">{}</text>",
            esc(&lane.label)
        );
        if let Some(note) = &lane.note {
            let _ = write!(
                out,
                "<text class=\"lane-note\" x=\"{x}\" y=\"34\" text-anchor=\"{anchor}\">{}</text>",
                esc(&clip(note, 30))
            );
        }
    }
    out.push_str("</svg>\n");
    let _ = writeln!(
        out,
        "<svg class=\"chart-body\" width=\"{width}\" height=\"{height}\" \
         xmlns=\"http://www.w3.org/2000/svg\">\
         <defs><marker id=\"head\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\"/></marker>\
         <marker id=\"head-tx\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto\"><path class=\"tx-head\" d=\"M0,0 L10,5 L0,10 z\"/></marker></defs>"
    );
    bands(&mut out, chart, record, width);
    for (i, lane) in chart.lanes.iter().enumerate() {
        let x = g.x(i);
        let class = if Some(i) == g.ledger {
            "lane ledger"
        } else {
            "lane"
        };
        let _ = writeln!(
            out,
            "<g class=\"{class}\" data-lane=\"{}\"><line class=\"life\" x1=\"{x}\" y1=\"{}\" \
             x2=\"{x}\" y2=\"{}\"/></g>",
            esc(&lane.label),
            y(lane.first_row).saturating_sub(ROW_H / 2),
            y(lane.last_row) + ROW_H / 2
        );
    }
    let mut last_time = None;
    let start = record.started_ms;
    for (r, row) in chart.rows.iter().enumerate() {
        draw_row(&mut out, &g, chart, record, r);
        let t = row.at_ms.saturating_sub(start);
        if last_time != Some(t) {
            last_time = Some(t);
            let _ = write!(
                out,
                "<text class=\"time\" x=\"{}\" y=\"{}\" text-anchor=\"end\">+{t} ms</text>",
                GUTTER_W - 6,
                y(r) + 4
            );
        }
    }
    out.push_str("</svg>\n</div>\n");
    out
}

/// A band per step (from its row to the next step's), the failing one marked.
fn bands(out: &mut String, chart: &Chart, record: &RunRecord, width: usize) {
    let step_rows: Vec<(usize, usize)> = chart
        .rows
        .iter()
        .enumerate()
        .filter_map(|(r, row)| match row.item {
            Item::Step { index } => Some((r, index)),
            _ => None,
        })
        .collect();
    for (k, (r, index)) in step_rows.iter().enumerate() {
        let end = step_rows.get(k + 1).map_or(chart.rows.len(), |(n, _)| *n);
        let failed = record.steps[*index].outcome == StepOutcome::Failed;
        let class = if failed {
            "band failed"
        } else if k % 2 == 0 {
            "band even"
        } else {
            "band odd"
        };
        let _ = write!(
            out,
            "<rect class=\"{class}\" x=\"0\" y=\"{}\" width=\"{width}\" height=\"{}\"/>",
            PAD + r * ROW_H,
            (end - r) * ROW_H
        );
    }
    out.push('\n');
}

fn draw_row(out: &mut String, g: &Geometry, chart: &Chart, record: &RunRecord, r: usize) {
    let yr = y(r);
    match &chart.rows[r].item {
        Item::Step { index } => {
            let step = &record.steps[*index];
            let class = match step.outcome {
                StepOutcome::Passed => "step passed",
                StepOutcome::Failed => "step failed",
                StepOutcome::NotRun => "step not-run",
            };
            let mark = if step.outcome == StepOutcome::Failed {
                "✗ "
            } else {
                ""
            };
            let label = format!(
                "{mark}#{} · L{} {}",
                step.index,
                step.line,
                compact(&step.text)
            );
            let _ = writeln!(
                out,
                "<g class=\"{class}\" id=\"chart-step-{}\"><title>{}</title>\
                 <line class=\"step-rule\" x1=\"0\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>\
                 <text x=\"8\" y=\"{}\">{}</text></g>",
                step.index,
                esc(&format!(
                    "step {} (line {}): {}{}",
                    step.index,
                    step.line,
                    step.text,
                    step.error
                        .as_ref()
                        .map(|e| format!("\n{e}"))
                        .unwrap_or_default()
                )),
                PAD + r * ROW_H,
                g.width(),
                PAD + r * ROW_H,
                yr + 4,
                esc(&clip(&label, GUTTER_CHARS))
            );
        }
        Item::Note { text } => {
            let _ = writeln!(
                out,
                "<g class=\"note\"><title>{}</title><text x=\"8\" y=\"{}\">{}</text></g>",
                esc(text),
                yr + 4,
                esc(&clip(&format!("setup: {text}"), GUTTER_CHARS))
            );
        }
        Item::Send {
            lane,
            to,
            recv_row,
            label,
        } => {
            let x1 = g.x(*lane);
            let Some(to) = to else {
                mark_at(out, x1, yr, "warn", &format!("sent {label} (peer unknown)"));
                return;
            };
            let x2 = g.x(*to);
            let right = x2 >= x1;
            let (tx, anchor) = if right {
                (x1 + 6, "start")
            } else {
                (x1 - 6, "end")
            };
            match recv_row {
                Some(rr) => {
                    let _ = writeln!(
                        out,
                        "<g class=\"arrow\" data-from=\"{}\" data-to=\"{}\"><title>{}</title>\
                         <line x1=\"{x1}\" y1=\"{yr}\" x2=\"{x2}\" y2=\"{}\" marker-end=\"url(#head)\"/>\
                         <text x=\"{tx}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text></g>",
                        esc(&chart.lanes[*lane].label),
                        esc(&chart.lanes[*to].label),
                        esc(label),
                        y(*rr),
                        yr - 3,
                        esc(label)
                    );
                }
                None => {
                    // Lost: half way, then a cross.
                    let xm = (x1 + x2) / 2;
                    let _ = writeln!(
                        out,
                        "<g class=\"arrow lost\" data-from=\"{}\" data-to=\"{}\"><title>{} (never \
                         received)</title><line x1=\"{x1}\" y1=\"{yr}\" x2=\"{xm}\" y2=\"{yr}\"/>\
                         <text class=\"cross\" x=\"{xm}\" y=\"{}\" text-anchor=\"middle\">✕</text>\
                         <text x=\"{tx}\" y=\"{}\" text-anchor=\"{anchor}\">{} · lost</text></g>",
                        esc(&chart.lanes[*lane].label),
                        esc(&chart.lanes[*to].label),
                        esc(label),
                        yr + 4,
                        yr - 3,
                        esc(label)
                    );
                }
            }
        }
        Item::Recv {
            lane,
            from,
            send_row,
            label,
        } => {
            let x2 = g.x(*lane);
            let left = from.is_some_and(|f| g.x(f) < x2);
            // The receiver's numbers on the far side of its lane, beside the arrowhead.
            let (tx, anchor) = if left {
                (x2 + 8, "start")
            } else {
                (x2 - 8, "end")
            };
            if send_row.is_none() {
                // Its send is not in the files (a cut file): a stub from the peer's side.
                let x1 = if left { x2.saturating_sub(40) } else { x2 + 40 };
                let _ = write!(
                    out,
                    "<g class=\"arrow orphan\"><title>{} (its send is not in the files)</title>\
                     <line x1=\"{x1}\" y1=\"{yr}\" x2=\"{x2}\" y2=\"{yr}\" marker-end=\"url(#head)\"/></g>",
                    esc(label)
                );
            }
            let _ = writeln!(
                out,
                "<text class=\"num\" x=\"{tx}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
                yr + 4,
                esc(label.split("  ").nth(1).unwrap_or(label))
            );
        }
        Item::Mark { lane, class, text } => mark_at(out, g.x(*lane), yr, class, text),
        Item::Tx { lane, class, label } => {
            let x1 = g.x(*lane);
            let Some(ledger) = g.ledger else {
                mark_at(out, x1, yr, class, label);
                return;
            };
            let x2 = g.x(ledger);
            let _ = writeln!(
                out,
                "<g class=\"arrow {class}\"><title>{}</title>\
                 <line x1=\"{x1}\" y1=\"{yr}\" x2=\"{x2}\" y2=\"{yr}\" marker-end=\"url(#head-tx)\"/>\
                 <text x=\"{}\" y=\"{}\">{}</text></g>",
                esc(label),
                x2 + 8,
                yr + 4,
                esc(&clip(label, MARK_CHARS))
            );
        }
    }
}

/// A step's TOML in fewer characters for the gutter: `pay from=alice to=bob amount=10`.
fn compact(text: &str) -> String {
    text.replace(" = { ", " ")
        .replace(" = ", "=")
        .replace(", ", " ")
        .replace(['"', '{', '}'], "")
        .trim()
        .to_string()
}

fn mark_at(out: &mut String, x: usize, y: usize, class: &str, text: &str) {
    let shape = match class {
        "backup" => format!(
            "<path d=\"M{x},{} L{},{y} L{x},{} L{},{y} z\"/>",
            y - 6,
            x + 6,
            y + 6,
            x - 6
        ),
        "crash" | "cut" => format!(
            "<path d=\"M{},{} L{},{} M{},{} L{},{}\"/>",
            x - 6,
            y - 6,
            x + 6,
            y + 6,
            x - 6,
            y + 6,
            x + 6,
            y - 6
        ),
        c if c.starts_with("audit") || c == "hold" => format!(
            "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" rx=\"2\"/>",
            x - 6,
            y - 6
        ),
        _ => format!("<circle cx=\"{x}\" cy=\"{y}\" r=\"4\"/>"),
    };
    let _ = writeln!(
        out,
        "<g class=\"mark {class}\"><title>{}</title>{shape}<text x=\"{}\" y=\"{}\">{}</text></g>",
        esc(text),
        x + 10,
        y + 4,
        esc(&clip(text, MARK_CHARS))
    );
}
