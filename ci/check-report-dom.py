#!/usr/bin/env python3
"""Check the DOM a browser built from a failing run's report.html (run by ci/check-report.sh).

Usage: check-report-dom.py DOM_FILE [MIN_LANES]

DOM_FILE is what `chromium --headless --dump-dom file://.../report.html` printed: the page after
its script ran. Fails (exit 1, one line per problem) unless it shows the message sequence chart
(at least MIN_LANES node lanes, default 2, one of them a second run such as `bob#2`, the ledger
lane, message arrows with commitment numbers), the failing step highlighted in the chart and in
the steps table, the ledger and invariants sections, a folded log per node, and the page's
script ran (it marks <html data-script="ran">).
"""
import html.parser
import re
import sys


class Dom(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.elements = []  # (tag, classes, attrs)
        self.text = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.elements.append((tag, set((attrs.get("class") or "").split()), attrs))

    def handle_data(self, data):
        self.text.append(data)


def main() -> int:
    dom = Dom()
    dom.feed(open(sys.argv[1], encoding="utf-8").read())
    min_lanes = int(sys.argv[2]) if len(sys.argv) > 2 else 2

    def count(tag, *classes, exact=None):
        return [
            a
            for t, c, a in dom.elements
            if t == tag and set(classes) <= c and (exact is None or c == set(exact))
        ]

    problems = []
    lanes = [a.get("data-lane", "") for a in count("g", "lane") if "ledger" not in a.get("class", "")]
    ledger = count("g", "lane", "ledger")
    arrows = count("g", "arrow", exact={"arrow"})
    failed_steps = count("g", "step", "failed")
    text = "".join(dom.text)
    if len(lanes) < min_lanes:
        problems.append(f"{len(lanes)} node lanes, expected at least {min_lanes}: {lanes}")
    if not any(re.search(r"#[2-9]$", lane) for lane in lanes):
        problems.append(f"no lane of a second run (a restored node): {lanes}")
    if len(ledger) != 1:
        problems.append(f"{len(ledger)} ledger lanes, expected 1")
    if not arrows:
        problems.append("no message arrow")
    if not re.search(r"RevokeAndAck \S+  L\d+ R\d+", text):
        problems.append("no arrow label with a message name and commitment numbers")
    if len(failed_steps) != 1:
        problems.append(f"{len(failed_steps)} failing steps in the chart's gutter, expected 1")
    if len(count("rect", "band", "failed")) != 1:
        problems.append("the failing step's band is not highlighted")
    if len(count("tr", "step-row", "failed")) != 1:
        problems.append("the steps table does not mark the failing step")
    for section in ("failure", "ledger", "invariants", "logs"):
        if not any(a.get("id") == section for _, _, a in dom.elements):
            problems.append(f"no #{section} section")
    logs = count("details", "log")
    if len(logs) < min_lanes:
        problems.append(f"{len(logs)} node logs, expected at least {min_lanes}")
    if not any(t == "html" and a.get("data-script") == "ran" for t, _, a in dom.elements):
        problems.append("the page's script did not run")
    for p in problems:
        print(f"check-report-dom: {p}")
    if problems:
        return 1
    step = failed_steps[0].get("id", "?")
    print(
        f"check-report-dom: ok ({len(lanes)} node lanes {', '.join(lanes)} + ledger, "
        f"{len(arrows)} arrows, failing step {step}, {len(logs)} logs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
