#!/usr/bin/env python3
"""ARCHITECTURE.md's workspace tree, generated from the repository's files (run by .ci/run).

Why: the tree was written by hand and drifted (a review found a dozen files missing and modules
that no longer existed). Now it is made from the files themselves, and CI fails when the
committed copy differs from what the files make, so it cannot drift again.

What it lists, one line each, in a fenced block between `<!-- tree:begin -->` and
`<!-- tree:end -->` in ARCHITECTURE.md:
- the root `Cargo.toml` and `Cargo.lock`, then each workspace member (`[workspace] members`):
  its directory, described by its Cargo.toml's `description` (else its `src/lib.rs` doc), then
  every file and directory in it, recursively (`src/` and `tests/` are shown as prefixes of
  their entries, `src/lib.rs`, `tests/protocol/`; the member's own Cargo.toml is its line);
- every other top-level entry, and everything below it, except what `collapse` patterns leave
  to their directory's line (the scenario files of `scenarios/`, say). A directory holding just
  one listed file is shown as one line, `examples/two-nodes.sh`.

Where a line's description comes from:
- a Rust file: the first sentence of its leading `//!` doc (intra-doc links as plain code);
- a directory of Rust files: its hub's, `mod.rs` (or `main.rs`, `lib.rs`, or the sibling `x.rs`
  of `x/`, shown as `x.rs, x/`); the hub is that line, not a line of its own;
- anything else: the `[describe]` table of `ci/tree.toml`, keyed by path (a directory with `/`).
A description longer than the line drops its parentheses, then is clipped at a clause or word
with `…`; the description column is aligned and a line is at most `width` columns (100).

Which files: `git ls-files --cached --others --exclude-standard` in a git work tree (so a new
file counts as soon as it exists, and what .gitignore ignores never does), else (or when git
fails) a walk of the directory; in both, the `ignore` patterns of ci/tree.toml are skipped.

It fails (exit 1, one line per problem) when a Rust file has no `//!` doc, a directory has no hub
and no description, any other entry has no description, or ci/tree.toml describes a path that
is not listed (stale). Then, without options, it compares the tree with ARCHITECTURE.md's block
and exits 1 when they differ, printing the difference and the command that regenerates it.

    python3 ci/check-tree.py            # check: exit 0 when ARCHITECTURE.md's tree is current
    python3 ci/check-tree.py --write    # regenerate the block between the markers
    python3 ci/check-tree.py --print    # print the tree

Exit codes: 0 current (or written), 1 a problem or a difference, 2 a usage error (no markers,
no workspace).
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import fnmatch
import os
import pathlib
import re
import subprocess
import sys
import tomllib

HERE = pathlib.Path(__file__).resolve().parent
BEGIN = "<!-- tree:begin -->"
END = "<!-- tree:end -->"
REGENERATE = "python3 ci/check-tree.py --write"
# Files that make a directory's line instead of a line of their own, in order of preference.
HUBS = ("mod.rs", "main.rs", "lib.rs")
# Crate roots come first among their siblings.
ROOTS = ("lib.rs", "main.rs")
# A member's directories shown as prefixes of their entries rather than as lines of their own.
FLATTENED = ("src", "tests")
INDENT = "  "
# Names that stay capitalised at the start of a description.
PROPER = ("Fiber", "Noise", "Docker", "Chromium", "Rust", "Lightning")
# Abbreviations whose dot does not end a sentence.
ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.")


class UsageError(Exception):
    """The tree cannot be made or placed at all (exit 2)."""


# ---------------------------------------------------------------------------------------------
# Descriptions from Rust module docs.


def module_doc(text: str) -> str:
    """The first paragraph of a file's leading `//!` doc, as one line ("" without one).

    Lines before the doc that are blank, plain `//` comments or inner attributes (`#![...]`)
    are skipped; the paragraph ends at a blank doc line, a code fence or a list item.
    """
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("//!"):
            body = line[3:]
            if body.startswith(" "):
                body = body[1:]
            body = body.strip()
            if not body:
                if lines:
                    break
                continue
            if body.startswith("```") or (lines and re.match(r"[-*] |\d+\. ", body)):
                break
            lines.append(body)
        elif lines:
            break
        elif line and not line.startswith("//") and not line.startswith("#!["):
            break
    return " ".join(lines)


def plain_links(text: str) -> str:
    """Rustdoc links as what they show: [`Step`] and [`x`](Self::y) as `Step`, `x`; [a](b) as a."""
    text = re.sub(r"\[(`[^`]*`)\](?:\([^)\s]*\))?", r"\1", text)
    return re.sub(r"\[([^\]`]+)\]\([^)\s]*\)", r"\1", text)


def _outside_code(text: str):
    """Yield (index, char, depth) for each char outside backtick spans; depth counts brackets."""
    code = False
    depth = 0
    for i, c in enumerate(text):
        if c == "`":
            code = not code
            continue
        if code:
            continue
        if c in "([":
            depth += 1
        elif c in ")]":
            depth = max(0, depth - 1)
        yield i, c, depth


def first_sentence(paragraph: str) -> str:
    """The first sentence of a paragraph, without its final stop or colon.

    A sentence ends at a `.` followed by a space or the end, outside code spans and brackets,
    and not ending an abbreviation (e.g., i.e.).
    """
    text = plain_links(paragraph).strip()
    for i, c, depth in _outside_code(text):
        if c != "." or depth != 0:
            continue
        if i + 1 < len(text) and text[i + 1] != " ":
            continue
        if text[: i + 1].lower().endswith(ABBREVIATIONS):
            continue
        return text[:i].strip()
    return text.rstrip(":.").strip()


def drop_parentheses(text: str) -> str:
    """The text without its parenthesised asides (outside code spans)."""
    out = []
    depth = 0
    code = False
    for c in text:
        if c == "`":
            code = not code
        if not code and c == "(":
            depth += 1
            continue
        if not code and c == ")" and depth:
            depth -= 1
            continue
        if depth == 0:
            out.append(c)
    return re.sub(r"\s+([,;:.])", r"\1", re.sub(r"\s{2,}", " ", "".join(out))).strip()


def fit(text: str, width: int) -> str:
    """`text` in at most `width` columns: as it is, else without parentheses, else clipped.

    A clip ends at the last clause boundary (`,` `;` `:`) in the second half of the room, else at
    the last space, never inside a code span, and is marked with `…`.
    """
    if len(text) <= width:
        return text
    short = drop_parentheses(text)
    if len(short) <= width:
        return short
    room = width - 1  # the "…"
    spaces = []
    clauses = []
    for i, c, _depth in _outside_code(short[: room + 1]):
        if c == " ":
            spaces.append(i)
            if i > 0 and short[i - 1] in ",;:" and i >= room // 2:
                clauses.append(i - 1)
    if clauses:
        return short[: clauses[-1]] + "…"
    if spaces:
        return short[: spaces[-1]].rstrip(",;:") + "…"
    return short[:room] + "…"


def rust_description(path: pathlib.Path) -> str:
    """The first sentence of a Rust file's module doc, lower-cased as the tree writes ("" without
    one)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    return lower_first(first_sentence(module_doc(text)))


def lower_first(text: str) -> str:
    """`The ledger` -> `the ledger`, as the tree writes its descriptions; a first word that is a
    name stays (`RocksDB`, `UNSAFE`, `Fiber's`, `ReestablishChannel`)."""
    word = re.match(r"[A-Za-z]+", text)
    if not word or word.group() in PROPER:
        return text
    if word.group()[0].isupper() and (len(word.group()) == 1 or word.group()[1:].islower()):
        return text[0].lower() + text[1:]
    return text


# ---------------------------------------------------------------------------------------------
# The files.


@dataclasses.dataclass
class Config:
    document: str
    width: int
    ignore: list[str]
    collapse: list[str]
    describe: dict[str, str]


def load_config(root: pathlib.Path, path: pathlib.Path | None) -> Config:
    path = path or root / "ci" / "tree.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file (the descriptions of non-Rust entries)") from None
    settings = data.get("settings", {})
    return Config(
        document=settings.get("document", "ARCHITECTURE.md"),
        width=int(settings.get("width", 100)),
        ignore=list(settings.get("ignore", [])),
        collapse=list(settings.get("collapse", [])),
        describe=dict(data.get("describe", {})),
    )


def ignored(rel: str, patterns: list[str]) -> bool:
    """Whether any component of `rel`, or `rel` itself, matches an ignore pattern."""
    parts = rel.split("/")
    return any(
        fnmatch.fnmatchcase(rel, p) or any(fnmatch.fnmatchcase(part, p) for part in parts)
        for p in patterns
    )


def list_files(root: pathlib.Path, patterns: list[str]) -> list[str]:
    """Every file of the repository (relative, `/`-separated), without ignored ones."""
    files: list[str] | None = None
    if (root / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others"]
                + ["--exclude-standard"],
                check=True,
                capture_output=True,
            ).stdout.decode("utf-8", errors="replace")
            files = [f for f in out.split("\0") if f and (root / f).is_file()]
        except (OSError, subprocess.CalledProcessError):
            files = None  # no git, or it refuses this checkout: walk it instead
    if files is None:
        files = []
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = os.path.relpath(dirpath, root)
            rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
            dirnames[:] = sorted(
                d for d in dirnames if d != ".git" and not ignored(rel_dir + d, patterns)
            )
            files.extend(rel_dir + f for f in filenames)
    return sorted({f for f in files if not ignored(f, patterns)})


@dataclasses.dataclass
class Node:
    """A directory of the listing: its subdirectories and files, by name."""

    dirs: dict[str, "Node"] = dataclasses.field(default_factory=dict)
    files: list[str] = dataclasses.field(default_factory=list)


def build_nodes(files: list[str]) -> Node:
    top = Node()
    for f in files:
        *dirs, name = f.split("/")
        node = top
        for d in dirs:
            node = node.dirs.setdefault(d, Node())
        node.files.append(name)
    return top


# ---------------------------------------------------------------------------------------------
# The tree.


@dataclasses.dataclass
class Line:
    depth: int
    name: str
    description: str


class Tree:
    def __init__(self, root: pathlib.Path, config: Config):
        self.root = root
        self.config = config
        self.problems: list[str] = []
        self.used: set[str] = set()
        self.lines: list[Line] = []

    # Descriptions.

    def described(self, rel: str, what: str) -> str:
        """The `[describe]` entry of `rel`, or a problem."""
        if rel in self.config.describe:
            self.used.add(rel)
            return self.config.describe[rel]
        self.problems.append(f"{rel}: no description ({what}: add it to ci/tree.toml [describe])")
        return ""

    def rust(self, rel: str) -> str:
        text = rust_description(self.root / rel)
        if not text:
            self.problems.append(f"{rel}: no module doc (add a `//!` first line: what it is for)")
        return text

    def hub(self, rel_dir: str, node: Node, parent: Node | None, name: str) -> tuple[str, bool]:
        """The file that describes directory `rel_dir`, and whether it is the sibling `x.rs`
        of `x/` rather than a file inside it; ("", False) when it has none."""
        for hub in HUBS:
            if hub in node.files:
                return f"{rel_dir}/{hub}", False
        if parent is not None and f"{name}.rs" in parent.files:
            return f"{rel_dir}.rs", True
        return "", False

    # Listing.

    def add(self, depth: int, name: str, description: str) -> None:
        self.lines.append(Line(depth, name, description))

    def collapsed(self, rel: str) -> bool:
        return any(fnmatch.fnmatchcase(rel, p) for p in self.config.collapse)

    def entries(self, rel_dir: str, node: Node, flattened: bool = False) -> list[tuple[str, str]]:
        """A directory's entries to list, as (kind, name), crate roots first, then by name.

        A directory's hub and a sibling `x.rs` of a directory `x/` are the directory's line, so
        they are not entries; a flattened directory (a member's `src/`) has no line, so its crate
        roots are.
        """
        skip = set()
        for hub in () if flattened else HUBS:
            if hub in node.files:
                skip.add(hub)
                break
        for d in node.dirs:
            if f"{d}.rs" in node.files and not any(h in node.dirs[d].files for h in HUBS):
                skip.add(f"{d}.rs")
        items = [("file", f) for f in node.files if f not in skip]
        items += [("dir", d) for d in node.dirs]

        def key(item):
            kind, name = item
            stem = name[:-3] if name.endswith(".rs") else name
            return (0 if kind == "file" and name in ROOTS else 1, stem, kind)

        items = [
            item
            for item in items
            if not self.collapsed(join(rel_dir, item[1]))
        ]
        return sorted(items, key=key)

    def member(self, name: str, node: Node) -> None:
        cargo = self.root / name / "Cargo.toml"
        description = ""
        if cargo.is_file():
            package = tomllib.loads(cargo.read_text(encoding="utf-8")).get("package", {})
            if package.get("description"):
                description = f"package `{package.get('name', name)}`: " + lower_first(
                    package["description"].rstrip(".")
                )
        if not description and "src" in node.dirs and "lib.rs" in node.dirs["src"].files:
            description = self.rust(f"{name}/src/lib.rs")
        if not description:
            self.problems.append(
                f"{name}/: no description (a `description` in {name}/Cargo.toml, or a `//!` "
                "doc in src/lib.rs)"
            )
        self.add(0, f"{name}/", description)
        for kind, entry in self.entries(name, node, flattened=True):
            if kind == "file" and entry == "Cargo.toml":
                continue
            if kind == "dir" and entry in FLATTENED:
                sub = node.dirs[entry]
                for sub_kind, sub_entry in self.entries(f"{name}/{entry}", sub, flattened=True):
                    self.entry(1, f"{name}/{entry}", sub_kind, sub_entry, sub, f"{entry}/")
            else:
                self.entry(1, name, kind, entry, node, "")

    def entry(
        self, depth: int, rel_dir: str, kind: str, name: str, parent: Node, prefix: str
    ) -> None:
        rel = join(rel_dir, name)
        if kind == "file":
            if name.endswith(".rs"):
                description = self.rust(rel)
            else:
                description = self.described(rel, "not a Rust file")
            self.add(depth, prefix + name, description)
            return
        node = parent.dirs[name]
        entries = self.entries(rel, node)
        hub, sibling = self.hub(rel, node, parent, name)
        label = f"{prefix}{name}/"
        if not hub and len(entries) == 1 and entries[0][0] == "file" and not node.dirs:
            # One file alone in its directory: one line, `examples/two-nodes.sh`.
            self.entry(depth, rel, "file", entries[0][1], node, label)
            return
        if hub:
            description = self.rust(hub)
            if sibling:
                label = f"{prefix}{name}.rs, {name}/"
        else:
            description = self.described(rel + "/", "a directory without mod.rs or main.rs")
        self.add(depth, label, description)
        for sub_kind, sub_name in entries:
            self.entry(depth + 1, rel, sub_kind, sub_name, node, "")

    def build(self) -> list[str]:
        files = list_files(self.root, self.config.ignore)
        top = build_nodes(files)
        try:
            workspace = tomllib.loads((self.root / "Cargo.toml").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(f"{self.root}/Cargo.toml: no such file (not a workspace)") from None
        members = [m.rstrip("/") for m in workspace.get("workspace", {}).get("members", [])]
        for name in ("Cargo.toml", "Cargo.lock"):
            if name in top.files:
                self.add(0, name, self.described(name, "not a Rust file"))
        for name in members:
            if name in top.dirs:
                self.member(name, top.dirs[name])
        order = {key: i for i, key in enumerate(self.config.describe)}
        rest = [("dir", d) for d in top.dirs if d not in members]
        rest += [("file", f) for f in top.files if f not in ("Cargo.toml", "Cargo.lock")]

        def key(item):
            kind, name = item
            path = name + "/" if kind == "dir" else name
            # A directory holding one file is described by that file's key.
            candidates = [k for k in order if k == path or k.startswith(path)]
            return (min((order[k] for k in candidates), default=len(order)), name)

        for kind, name in sorted(rest, key=key):
            self.entry(0, "", kind, name, top, "")
        for key_ in self.config.describe:
            if key_ not in self.used:
                self.problems.append(
                    f'ci/tree.toml: [describe] "{key_}" is not listed (stale: remove it, or it '
                    "is ignored, collapsed or described by its own doc)"
                )
        return self.render()

    def render(self) -> list[str]:
        names = [INDENT * line.depth + line.name for line in self.lines]
        column = max((len(n) for n in names), default=0) + 2
        out = []
        for name, line in zip(names, self.lines):
            room = self.config.width - column
            out.append((name.ljust(column) + fit(line.description, room)).rstrip())
        return out


def join(rel_dir: str, name: str) -> str:
    return f"{rel_dir}/{name}" if rel_dir else name


# ---------------------------------------------------------------------------------------------
# The document.


def block(lines: list[str]) -> str:
    return "```\n" + "\n".join(lines) + "\n```\n"


def split_document(text: str, path: pathlib.Path) -> tuple[str, str, str]:
    """(before and the begin marker, the block, the end marker and after)."""
    start = text.find(BEGIN)
    end = text.find(END)
    if start < 0 or end < 0 or end < start:
        raise UsageError(f"{path}: no `{BEGIN}` ... `{END}` markers around the tree")
    head = text[: start + len(BEGIN)] + "\n"
    return head, text[len(head) : end], text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="regenerate the tree in the document")
    mode.add_argument("--print", action="store_true", help="print the tree")
    parser.add_argument("--root", type=pathlib.Path, default=HERE.parent, help="the repository")
    parser.add_argument("--config", type=pathlib.Path, help="default: ROOT/ci/tree.toml")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        config = load_config(root, args.config)
        tree = Tree(root, config)
        lines = tree.build()
        if tree.problems:
            for problem in tree.problems:
                print(problem)
            print(f"check-tree: {len(tree.problems)} problem(s); the tree was not written")
            return 1
        if args.print:
            print("\n".join(lines))
            return 0
        document = root / config.document
        text = document.read_text(encoding="utf-8")
        head, current, tail = split_document(text, document)
    except UsageError as e:
        print(f"check-tree: {e}", file=sys.stderr)
        return 2
    wanted = block(lines)
    if args.write:
        if current != wanted:
            document.write_text(head + wanted + tail, encoding="utf-8")
            print(f"check-tree: wrote the tree into {config.document} ({len(lines)} lines)")
        return 0
    if current == wanted:
        return 0
    diff = list(
        difflib.unified_diff(
            current.splitlines(),
            wanted.splitlines(),
            f"{config.document} (committed)",
            "the files (generated)",
            lineterm="",
        )
    )
    print("\n".join(diff[:60] + (["..."] if len(diff) > 60 else [])))
    print(f"check-tree: {config.document}'s workspace tree is out of date: run `{REGENERATE}`")
    return 1


if __name__ == "__main__":
    sys.exit(main())
