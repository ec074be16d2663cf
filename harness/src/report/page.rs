//! The page every HTML report shares: one self-contained file (inline CSS and script, no
//! network access, no external fonts or images), and the escaping every text goes through.

use std::fmt::Write as _;

/// Escape text for HTML (element content and quoted attribute values alike).
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A complete page: `title`, then `body` (already HTML).
pub fn page(title: &str, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 8192);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n<script>{SCRIPT}</script>\n\
         </body>\n</html>\n",
        esc(title)
    );
    out
}

const CSS: &str = r#"
:root { --fg:#1d2330; --muted:#667085; --line:#d0d5dd; --bad:#c0262d; --bad-bg:#fdecec;
  --ok:#1a7f37; --ok-bg:#e9f7ee; --warn:#b54708; --warn-bg:#fff4e5; --accent:#1f5fa8; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  margin: 0; padding: 16px 24px 48px; background: #fff; }
h1 { font-size: 20px; margin: 0 0 8px; }
h2 { font-size: 16px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
code, pre, .mono { font: 12.5px/1.4 ui-monospace, "DejaVu Sans Mono", Menlo, monospace; }
pre { white-space: pre-wrap; word-break: break-word; margin: 0; }
.verdict-failed { color: var(--bad); } .verdict-passed { color: var(--ok); }
.verdict-unfinished { color: var(--warn); }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0; }
dl.meta dt { color: var(--muted); } dl.meta dd { margin: 0; }
.box { border-radius: 6px; padding: 10px 12px; margin: 10px 0; }
.failure { background: var(--bad-bg); border-left: 4px solid var(--bad); }
.problems { background: var(--warn-bg); border-left: 4px solid var(--warn); }
.problems li { margin: 2px 0; }
nav.toc a { margin-right: 14px; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f2f4f7; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.name { white-space: nowrap; }
tr.failed td { background: var(--bad-bg); } tr.not-run td { color: var(--muted); }
td.outcome-failed, td.bad { color: var(--bad); font-weight: 600; }
td.outcome-passed, td.good { color: var(--ok); }
.legend span { display: inline-block; margin-right: 14px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px;
  vertical-align: middle; }
.chart-scroll { overflow: auto; max-height: 82vh; border: 1px solid var(--line); border-radius: 6px;
  position: relative; background: #fff; }
.chart-scroll svg { display: block; }
.chart-head { position: sticky; top: 0; z-index: 2; }
.chart-head .head-bg { fill: #f8f9fb; stroke: var(--line); }
.lane-head { font: 600 13px system-ui, sans-serif; fill: var(--fg); }
.lane-note { font: 11px system-ui, sans-serif; fill: var(--warn); }
.gutter-head { font: 600 12px system-ui, sans-serif; fill: var(--muted); }
.chart-body text { font: 11px ui-monospace, "DejaVu Sans Mono", monospace; fill: var(--fg);
  paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }
.band.even { fill: #fafbfc; } .band.odd { fill: #fff; }
.band.failed { fill: #fbe3e4; }
.step-rule { stroke: #e4e7ec; stroke-dasharray: 3 3; }
.step text { font-weight: 600; } .step.failed text { fill: var(--bad); }
.step.not-run text { fill: var(--muted); }
.note text { fill: var(--muted); font-style: italic; }
.life { stroke: #475467; stroke-width: 1.5; }
.lane.ledger .life { stroke: #b54708; stroke-dasharray: 6 3; }
.arrow line { stroke: var(--accent); stroke-width: 1.3; }
.arrow text { fill: #0b3b75; }
#head path { fill: var(--accent); }
.arrow.lost line { stroke: var(--bad); stroke-dasharray: 4 3; }
.arrow.lost text { fill: var(--bad); }
.arrow.orphan line { stroke: var(--warn); stroke-dasharray: 2 2; }
.arrow.tx line { stroke: #b54708; stroke-dasharray: 5 3; stroke-width: 1.1; }
.arrow.tx text { fill: #7a2e0e; }
.arrow.tx.penalty line { stroke: var(--bad); stroke-width: 2; }
.arrow.tx.penalty text { fill: var(--bad); font-weight: 700; }
.arrow.tx.rejected text { fill: var(--bad); }
.tx-head { fill: #b54708; }
text.num { fill: var(--muted); font-size: 10px; }
.mark circle, .mark rect, .mark path { stroke: #344054; stroke-width: 1; fill: #fff; }
.mark.start circle { fill: #344054; }
.mark.state circle { fill: #84adea; }
.mark.state text { fill: #1849a9; }
.mark.audit.passed rect { fill: #6fcf97; } .mark.audit.passed text { fill: var(--ok); font-weight: 700; }
.mark.audit.failed rect { fill: #f97066; } .mark.audit.failed text { fill: var(--bad); font-weight: 700; }
.mark.backup path { fill: #9e77ed; } .mark.backup text { fill: #53389e; }
.mark.hold rect, .mark.hold circle { fill: #fdb022; } .mark.hold text { fill: #93370d; }
.mark.crash path, .mark.cut path { stroke: var(--bad); stroke-width: 2.5; }
.mark.crash text, .mark.cut text, .mark.error text, .mark.warn text { fill: var(--bad); }
.mark.stop circle { fill: #98a2b3; }
.mark.conn circle { r: 2.5; fill: #d0d5dd; } .mark.conn text { fill: var(--muted); font-size: 10px; }
.mark.payment circle { fill: #2ed3b7; } .mark.payment text { fill: #107569; }
.mark.tx circle { fill: #fdb022; } .mark.tx text { fill: #7a2e0e; }
.time { fill: var(--muted) !important; font-size: 10px !important; }
details.log { margin: 6px 0; border: 1px solid var(--line); border-radius: 6px; }
details.log summary { cursor: pointer; padding: 4px 8px; background: #f8f9fb; }
details.log .lines { max-height: 60vh; overflow: auto; padding: 4px 8px; }
.ll { font: 12px/1.35 ui-monospace, "DejaVu Sans Mono", monospace; white-space: pre-wrap;
  word-break: break-word; }
.ll.warn { color: var(--warn); } .ll.error { color: var(--bad); }
.hidden { display: none !important; }
.filters label { margin-right: 12px; }
.filters input[type=search] { margin-left: 8px; padding: 2px 6px; min-width: 240px; }
td.verdict-UNSAFE, td.verdict-LOST, td.verdict-MISMATCH, td.verdict-ERROR { background: var(--bad-bg);
  color: var(--bad); font-weight: 700; }
td.verdict-resumed, td.verdict-closed, td.verdict-forgotten { color: var(--ok); }
td.verdict-held, td.verdict-frozen { color: #1849a9; }
details.toml pre { background: #f8f9fb; padding: 6px 8px; }
"#;

const SCRIPT: &str = r#"
(function () {
  var boxes = document.querySelectorAll('.filters input[type=checkbox]');
  var search = document.querySelector('.filters input[type=search]');
  function apply() {
    var on = {};
    boxes.forEach(function (b) { on[b.value] = b.checked; });
    var needle = search ? search.value.toLowerCase() : '';
    document.querySelectorAll('details.log').forEach(function (d) {
      d.classList.toggle('hidden', on[d.dataset.node] === false);
      d.querySelectorAll('.ll').forEach(function (l) {
        l.classList.toggle('hidden', needle !== '' && l.textContent.toLowerCase().indexOf(needle) < 0);
      });
    });
  }
  boxes.forEach(function (b) { b.addEventListener('change', apply); });
  function openTarget() {
    var t = location.hash ? document.getElementById(location.hash.slice(1)) : null;
    if (t && t.tagName === 'DETAILS') { t.open = true; }
  }
  window.addEventListener('hashchange', openTarget);
  openTarget();
  // Open on the failing step: scroll the chart (not the page) to a little above it.
  var failed = document.querySelector('.chart-body .step.failed line');
  var scroller = document.querySelector('.chart-scroll');
  if (failed && scroller) {
    scroller.scrollTop = Math.max(0, failed.y1.baseVal.value - 160);
  }
  if (search) { search.addEventListener('input', apply); }
  document.documentElement.setAttribute('data-script', 'ran');
})();
"#;
