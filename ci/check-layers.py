#!/usr/bin/env python3
"""The harness's layering, checked cheaply on the source (run by .ci/run).

    scenario/ (file, validate, interpret, session) -> cluster/ -> driver/
    checks/ -> cluster/, model/          model/ <- checks/, sweep/
    sweep/, explore/ -> scenario::Session
    report/ (run directory -> report.html) <- scenario/, sweep/, explore/

Fails (exit 1, one line per problem) when:
- a module imports one it must not (the table below);
- the top-level modules of harness/src import each other in a cycle;
- `Network::new` / `Network::with_driver` is called outside scenario/session.rs;
- a file in harness/src is longer than MAX_LINES.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "harness" / "src"
MAX_LINES = 500
# module -> modules it must never import
FORBIDDEN = {
    "cluster": {"scenario", "checks", "sweep", "explore", "runner", "report"},
    "driver": {"cluster", "scenario", "checks", "sweep", "explore", "runner", "model", "report"},
    "model": {"cluster", "driver", "scenario", "checks", "sweep", "explore", "runner", "report"},
    "checks": {"scenario", "sweep", "explore", "runner", "report"},
    "client": {"cluster", "driver", "scenario", "checks", "sweep", "explore", "runner", "model",
               "report"},
    "scenario": {"sweep", "explore"},
    # Reports are made from a run directory's files alone: no network, no scenario.
    "report": {"cluster", "driver", "scenario", "checks", "sweep", "explore", "runner", "client",
               "model"},
}
# Binary-only files (the CLI) may use everything.
BINARY = {"main.rs", "sweep_cli.rs", "explore_cli.rs", "run_cli.rs", "report_cli.rs"}
CONSTRUCTOR_HOME = ROOT / "scenario" / "session.rs"


def top_module(path: pathlib.Path) -> str | None:
    rel = path.relative_to(ROOT)
    if rel.name in BINARY and len(rel.parts) == 1:
        return None
    if len(rel.parts) == 1:
        return rel.stem if rel.stem != "lib" else None
    return rel.parts[0]


def code_of(text: str) -> str:
    """The text without comments (so docs may name other layers)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def main() -> int:
    problems = []
    edges: dict[str, set[str]] = {}
    for path in sorted(ROOT.rglob("*.rs")):
        text = path.read_text()
        rel = path.relative_to(ROOT.parent.parent)
        lines = text.count("\n") + 1
        if lines > MAX_LINES:
            problems.append(f"{rel}: {lines} lines (at most {MAX_LINES}: split it by concern)")
        code = code_of(text)
        if path != CONSTRUCTOR_HOME and path.parent.name != "cluster":
            for m in re.finditer(r"Network::(new|with_driver)\s*\(", code):
                line = code[: m.start()].count("\n") + 1
                problems.append(
                    f"{rel}:{line}: Network::{m.group(1)} outside scenario/session.rs "
                    "(every run goes through the Session)"
                )
        module = top_module(path)
        if module is None:
            continue
        used = set(re.findall(r"\bcrate::(\w+)", code))
        # `use crate::{a, b::c}` groups
        for group in re.findall(r"\bcrate::\{([^}]*)\}", code):
            used |= set(re.findall(r"(?:^|,)\s*(\w+)", group))
        used.discard(module)
        edges.setdefault(module, set()).update(used)
        for bad in sorted(used & FORBIDDEN.get(module, set())):
            problems.append(f"{rel}: {module}/ imports {bad} (not allowed by the layering)")
    # Cycles among top-level modules.
    modules = set(edges)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(edges.get(m, ()) & modules):
            if state.get(n) == 1:
                cycle = stack[stack.index(n):] + [n]
                problems.append("import cycle: " + " -> ".join(cycle))
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(modules):
        if m not in state:
            visit(m)
    for p in problems:
        print(f"check-layers: {p}")
    if problems:
        return 1
    print(f"check-layers: ok ({len(modules)} modules, no cycles, no file over {MAX_LINES} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
