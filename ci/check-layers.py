#!/usr/bin/env python3
"""The harness's module layering, checked on the source against an allow-list (run by .ci/run).

Why a real checker: the previous script was a regex deny-list. In a trial it passed three
one-line violations: `use super::super::scenario::Scenario;` from cluster/ (it only looked for
`crate::x`), a `pub use scenario::Scenario;` re-export in lib.rs imported from driver/ as
`crate::Scenario`, and `let url = "http://x"; use crate::scenario::Scenario;` (it cut every line
at the first `//`, so a URL in a string hid the rest of its line). Modules it had no row for
were simply not checked.

So this script reads Rust the way the compiler does, just enough for imports:

1. A lexer drops comments (line, block, nested block, doc) and literals (strings with escapes,
   raw strings `r#".."#`, byte and C strings, char literals such as '"'), telling char literals
   from lifetimes ('a, 'static, '_). Text inside a literal or a comment never hides code, and
   never looks like code.
2. Per file: `mod` declarations and inline `mod x { }` blocks, the items a module defines, every
   `use` tree (nested groups, `self`, `as`, globs, `pub use`, inside function bodies too),
   `extern crate`, and every path written in code (`crate::cluster::Network::new(..)`,
   `super::super::x::Y`).
3. The crates of the package (from its Cargo.toml: the library, the binaries, the integration
   tests) as module trees (`a/b.rs` and `a/b/mod.rs` are module `a::b`).
4. Name resolution: `crate::`, `self::`, `super::` at any depth, the library's name from the
   binary and the tests, names brought in by `use`, and re-exports followed to where an item is
   defined (chains and glob re-exports included). A path that passes through another module's
   re-export depends on that module as well as on the one defining the item (unless that
   module re-exports from its own subtree: a facade, like a `pub use` in mod.rs).

It then checks, with the rules of `ci/layers.toml` (an allow-list, one line per module):
- every import of a harness module is allowed by the importer's rule (its own subtree is free);
- every use of a ruled outside crate (`dlp_node`, `dlp_node_api`, `dlp_chain`) is allowed;
- every file belongs to a module that has a rule (an unknown module fails; a rule whose module
  has no file yet is fine);
- no file-level import cycle (an edge goes to the file defining the imported item; `mod x;`
  and a module's `pub use` of its own descendants declare, they do not import);
- the Network is constructed only where `[network]` allows.
A file longer than `max_lines` is a warning (printed, the exit status is unaffected).

Output: one line per problem, `path:line: what (the rule)`; exit 1 when there is any.
`--graph layers` / `--graph files` prints the edges found instead of checking.

Known blind spots: paths inside string attributes (`#[serde(with = "dlp_chain::x")]`),
macro-generated code, and `#[path]` on modules declared inside inline `mod` blocks.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import re
import sys
import time
import tomllib
from collections import defaultdict, deque

HERE = pathlib.Path(__file__).resolve().parent

# ---------------------------------------------------------------------------------------------
# 1. Lexing: Rust source -> tokens, without comments and with literals as opaque tokens.


@dataclasses.dataclass(frozen=True)
class Token:
    kind: str  # "ident", "raw_ident" (r#name, text without r#), "lifetime", "literal", "punct"
    text: str
    line: int


TOKEN = re.compile(
    r"""
      (?P<ws>\s+)
    | (?P<line_comment>//[^\n]*)
    | (?P<block_comment>/\*)
    | (?P<raw_string>[bc]?r(?P<hashes>\#*)")
    | (?P<string>[bc]?")
    | (?P<char>b?'(?:\\(?:u\{[0-9a-fA-F_]*\}|x[0-9a-fA-F]{2}|.)|[^\\'\n])')
    | (?P<lifetime>'[^\W\d]\w*)
    | (?P<raw_ident>r\#[^\W\d]\w*)
    | (?P<ident>[^\W\d]\w*)
    | (?P<number>\d\w*)
    | (?P<path_sep>::)
    | (?P<punct>.)
    """,
    re.X | re.S,
)


class LexError(Exception):
    pass


def end_of_block_comment(text: str, start: int) -> int:
    """The index after the `*/` closing the comment opened at `start` (they nest)."""
    depth, i = 0, start
    while i < len(text):
        pair = text[i : i + 2]
        if pair == "/*":
            depth, i = depth + 1, i + 2
        elif pair == "*/":
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    raise LexError("unterminated block comment")


def end_of_string(text: str, start: int) -> int:
    """The index after the `"` closing a (non-raw) string whose body starts at `start`."""
    i = start
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == '"':
            return i + 1
        else:
            i += 1
    raise LexError("unterminated string")


def end_of_raw_string(text: str, start: int, hashes: str) -> int:
    close = text.find('"' + hashes, start)
    if close < 0:
        raise LexError("unterminated raw string")
    return close + 1 + len(hashes)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos, line = 0, 1
    while pos < len(text):
        m = TOKEN.match(text, pos)
        kind = m.lastgroup if m.lastgroup != "hashes" else "raw_string"
        end = m.end()
        if kind == "block_comment":
            end = end_of_block_comment(text, pos)
        elif kind == "raw_string":
            end = end_of_raw_string(text, end, m.group("hashes"))
        elif kind == "string":
            end = end_of_string(text, end)
        if kind in ("raw_string", "string", "char", "number"):
            tokens.append(Token("literal", "<literal>", line))
        elif kind == "raw_ident":
            tokens.append(Token("raw_ident", m.group()[2:], line))
        elif kind in ("ident", "lifetime", "path_sep", "punct"):
            kind = "punct" if kind == "path_sep" else kind
            tokens.append(Token(kind, m.group(), line))
        line += text.count("\n", pos, end)
        pos = end
    return tokens


# ---------------------------------------------------------------------------------------------
# 2. Parsing: tokens -> what each module of a file declares, defines, imports and names.

GLOB = "*"
ITEM_KEYWORDS = {"fn", "struct", "enum", "union", "trait", "type", "const", "static"}
# Words that start no path (`Self::` names the impl's type; the rest are keywords).
NOT_A_PATH_START = {
    "Self", "as", "async", "await", "break", "continue", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "static", "struct", "trait", "true", "type", "unsafe", "use",
    "where", "while",
}


@dataclasses.dataclass(frozen=True)
class Use:
    """One leaf of a `use` tree: `path` (a leading "::" marks an absolute path), bound as
    `name` (None for `as _`), or a glob (`name == GLOB`)."""

    path: tuple[str, ...]
    name: str | None
    line: int
    public: bool
    module_level: bool  # False: inside a function body (visible to this module's code only)


@dataclasses.dataclass(frozen=True)
class CodePath:
    segments: tuple[str, ...]
    line: int


@dataclasses.dataclass
class Scope:
    """One module's part of a file: the file's own module (`inline == ()`) or an inline
    `mod a { mod b { } }` block (`inline == ("a", "b")`)."""

    inline: tuple[str, ...]
    uses: list[Use] = dataclasses.field(default_factory=list)
    items: set[str] = dataclasses.field(default_factory=set)
    mod_decls: list[tuple[str, int]] = dataclasses.field(default_factory=list)  # `mod x;`
    inline_mods: list[str] = dataclasses.field(default_factory=list)
    paths: list[CodePath] = dataclasses.field(default_factory=list)


def is_word(tok: Token, word: str) -> bool:
    return tok.kind == "ident" and tok.text == word


def is_name(tok: Token) -> bool:
    return tok.kind in ("ident", "raw_ident")


def is_public(tokens: list[Token], i: int) -> bool:
    """Whether the item starting at `tokens[i]` has a `pub` or `pub(...)` before it."""
    j = i - 1
    if j >= 0 and tokens[j].text == ")":
        while j >= 0 and tokens[j].text != "(":
            j -= 1
        j -= 1
    return j >= 0 and is_word(tokens[j], "pub")


def parse_use_tree(tokens, i, prefix, add) -> int:
    """Parses one use tree at `tokens[i]` under `prefix`; calls `add(path, name, line)` per
    leaf. Returns the index after the tree."""
    path = list(prefix)
    if tokens[i].text == "::":
        if not path:
            path.append("::")
        i += 1
    while True:
        tok = tokens[i]
        if tok.text == "$":  # `$crate` in a macro
            i += 1
            continue
        if tok.text == "{":
            i += 1
            while tokens[i].text not in ("}", "<eof>"):
                i = parse_use_tree(tokens, i, path, add)
                if tokens[i].text == ",":
                    i += 1
            return i + 1
        if tok.text == "*":
            add(tuple(path), GLOB, tok.line)
            return i + 1
        if not is_name(tok):
            return i  # malformed: leave it to the compiler
        path.append(tok.text)
        i += 1
        if tokens[i].text == "::":
            i += 1
            continue
        name = path[-1]
        if is_word(tokens[i], "as"):
            name, i = tokens[i + 1].text, i + 2
        if path[-1] == "self":
            path.pop()
            name = path[-1] if name == "self" and path else name
        add(tuple(path), None if name == "_" else name, tok.line)
        return i


def read_path(tokens, i) -> tuple[tuple[str, ...], int]:
    """The path `a::b::c` (or `::a::b`) starting at `tokens[i]`; a turbofish ends it."""
    segments = []
    if tokens[i].text == "::":
        segments.append("::")
        i += 1
    while is_name(tokens[i]):
        segments.append(tokens[i].text)
        i += 1
        if tokens[i].text == "::" and is_name(tokens[i + 1]):
            i += 1
        else:
            break
    return tuple(segments), i


class FileParser:
    """Walks a file's tokens once, keeping a stack of module scopes by brace depth."""

    def __init__(self, tokens: list[Token]):
        self.tokens = tokens + [Token("punct", "<eof>", 0)] * 3
        self.scopes = [Scope(())]
        self.stack = [(self.scopes[0], 0)]  # (scope, brace depth of its body)
        self.depth = 0

    @property
    def scope(self) -> Scope:
        return self.stack[-1][0]

    def at_module_level(self) -> bool:
        return self.depth == self.stack[-1][1]

    def parse(self) -> list[Scope]:
        i, n = 0, len(self.tokens) - 3
        while i < n:
            i = self.step(i)
        return self.scopes

    def step(self, i: int) -> int:
        tok, nxt = self.tokens[i], self.tokens[i + 1]
        if tok.text == "{":
            self.depth += 1
        elif tok.text == "}":
            self.depth -= 1
            if len(self.stack) > 1 and self.depth < self.stack[-1][1]:
                self.stack.pop()
        elif is_word(tok, "use") and nxt.text != "<":  # not `impl Trait + use<'a>`
            return self.use_declaration(i)
        elif is_word(tok, "extern") and is_word(nxt, "crate"):
            return self.extern_crate(i)
        elif is_word(tok, "mod") and is_name(nxt):
            return self.module(i)
        elif is_word(tok, "macro_rules") and nxt.text == "!":
            self.define(self.tokens[i + 2])
            return i + 3
        elif tok.kind == "ident" and tok.text in ITEM_KEYWORDS:
            self.define(self.tokens[i + 2] if is_word(nxt, "mut") else nxt)
        elif self.starts_path(i):
            segments, end = read_path(self.tokens, i)
            if len(segments) >= 2 and segments[0] not in NOT_A_PATH_START:
                self.scope.paths.append(CodePath(segments, tok.line))
            return max(end, i + 1)
        return i + 1

    def starts_path(self, i: int) -> bool:
        tok, prev = self.tokens[i], self.tokens[i - 1] if i else None
        if prev is not None and prev.text in ("::", "."):
            return False
        if prev is not None and prev.text == "$" and tok.text != "crate":
            return False  # a macro's `$x::y`
        return is_name(tok) or (tok.text == "::" and is_name(self.tokens[i + 1]))

    def define(self, name_tok: Token) -> None:
        keyword = name_tok.kind == "ident" and name_tok.text in ITEM_KEYWORDS
        if is_name(name_tok) and not keyword and self.at_module_level():
            self.scope.items.add(name_tok.text)

    def use_declaration(self, i: int) -> int:
        public, module_level = is_public(self.tokens, i), self.at_module_level()
        scope = self.scope

        def add(path, name, line):
            scope.uses.append(Use(path, name, line, public, module_level))

        end = parse_use_tree(self.tokens, i + 1, (), add)
        return max(end, i + 1)

    def extern_crate(self, i: int) -> int:
        name_tok = self.tokens[i + 2]
        name, end = name_tok.text, i + 3
        if is_word(self.tokens[end], "as"):
            name, end = self.tokens[end + 1].text, end + 2
        if name_tok.text != "self":
            self.scope.uses.append(
                Use(("::", name_tok.text), name, name_tok.line, is_public(self.tokens, i),
                    self.at_module_level())
            )
        return end

    def module(self, i: int) -> int:
        name_tok, after = self.tokens[i + 1], self.tokens[i + 2]
        if not self.at_module_level():
            return i + 2
        self.scope.items.add(name_tok.text)
        if after.text == ";":
            self.scope.mod_decls.append((name_tok.text, name_tok.line))
            return i + 3
        if after.text == "{":
            self.scope.inline_mods.append(name_tok.text)
            inner = Scope(self.scope.inline + (name_tok.text,))
            self.scopes.append(inner)
            self.depth += 1
            self.stack.append((inner, self.depth))
            return i + 3
        return i + 2


def parse_file(text: str) -> list[Scope]:
    return FileParser(tokenize(text)).parse()


# ---------------------------------------------------------------------------------------------
# 3. Crates: the package's targets as module trees.

ModPath = tuple[str, ...]


@dataclasses.dataclass(eq=False)
class Module:
    crate: "Crate"
    path: ModPath
    file: pathlib.Path
    scope: Scope
    children: dict[str, ModPath] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(eq=False)
class Crate:
    name: str  # the library's name, or "bin main.rs" / "test tests/cli.rs"
    kind: str  # "library", "binary" or "tests"
    modules: dict[ModPath, Module] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Problem:
    file: pathlib.Path
    line: int
    what: str


class Package:
    """The library, binary and test crates of one Cargo package, with every file parsed."""

    def __init__(self, package_dir: pathlib.Path):
        self.problems: list[Problem] = []
        self.parsed: dict[pathlib.Path, list[Scope]] = {}
        self.lib_name, roots = crate_roots(package_dir)
        self.crates = [self.load_crate(name, kind, root) for name, kind, root in roots]
        self.library = next((c for c in self.crates if c.kind == "library"), None)

    def scopes_of(self, file: pathlib.Path) -> list[Scope]:
        if file not in self.parsed:
            try:
                self.parsed[file] = parse_file(file.read_text())
            except LexError as e:
                self.problems.append(Problem(file, 1, f"cannot read the source: {e}"))
                self.parsed[file] = [Scope(())]
        return self.parsed[file]

    def load_crate(self, name: str, kind: str, root: pathlib.Path) -> Crate:
        crate = Crate(name, kind)
        self.add_file(crate, (), root, root.parent)
        return crate

    def add_file(self, crate, path: ModPath, file: pathlib.Path, child_dir: pathlib.Path):
        for scope in self.scopes_of(file):
            mod_path = path + scope.inline
            directory = child_dir.joinpath(*scope.inline)
            module = Module(crate, mod_path, file, scope)
            crate.modules[mod_path] = module
            for name in scope.inline_mods:
                module.children[name] = mod_path + (name,)
            for name, line in scope.mod_decls:
                module.children[name] = mod_path + (name,)
                attributed = path_attribute(file, name) if not scope.inline else None
                child = (pathlib.Path(os.path.normpath(file.parent / attributed)) if attributed
                         else find_module_file(directory, name))
                if child is None or not child.is_file():
                    self.problems.append(Problem(file, line, (
                        f"no file for `mod {name};` (neither {name}.rs nor {name}/mod.rs, nor a "
                        "#[path] naming a file)")))
                    continue
                child_dir_ = child.parent if child.name == "mod.rs" else child.with_suffix("")
                self.add_file(crate, mod_path + (name,), child, child_dir_)

    def files(self) -> set[pathlib.Path]:
        return {m.file for c in self.crates for m in c.modules.values()}


def path_attribute(file: pathlib.Path, name: str) -> str | None:
    """The file a `#[path = "..."] mod name;` of `file` names (relative to `file`'s directory,
    as rustc reads it for a module declared at the top of a file), if it has one."""
    found = re.search(
        r'#\[\s*path\s*=\s*"([^"]+)"\s*\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+'
        + re.escape(name) + r'\s*;',
        file.read_text(),
    )
    return found.group(1) if found else None


def find_module_file(directory: pathlib.Path, name: str) -> pathlib.Path | None:
    for candidate in (directory / f"{name}.rs", directory / name / "mod.rs"):
        if candidate.is_file():
            return candidate
    return None


def crate_roots(package_dir: pathlib.Path) -> tuple[str, list[tuple[str, str, pathlib.Path]]]:
    """The library's name and (name, kind, root file) of every target, from Cargo.toml (with
    Cargo's defaults: src/lib.rs, src/main.rs, tests/*.rs and tests/*/main.rs)."""
    manifest_file = package_dir / "Cargo.toml"
    manifest = tomllib.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
    package = manifest.get("package", {})
    lib = manifest.get("lib", {})
    lib_name = lib.get("name", package.get("name", package_dir.name).replace("-", "_"))
    roots = []
    lib_root = package_dir / lib.get("path", "src/lib.rs")
    if lib_root.is_file():
        roots.append((lib_name, "library", lib_root))
    bins = {package_dir / b["path"] for b in manifest.get("bin", []) if "path" in b}
    if package.get("autobins", True) and (package_dir / "src/main.rs").is_file():
        bins.add(package_dir / "src/main.rs")
    tests = {package_dir / t.get("path", f"tests/{t['name']}.rs") for t in manifest.get("test", [])}
    if package.get("autotests", True):
        tests |= set((package_dir / "tests").glob("*.rs"))
        tests |= set((package_dir / "tests").glob("*/main.rs"))
    roots += [(f"bin {b.relative_to(package_dir)}", "binary", b) for b in sorted(bins)]
    roots += [(f"test {t.relative_to(package_dir)}", "tests", t) for t in sorted(tests)]
    return lib_name, roots


# ---------------------------------------------------------------------------------------------
# 4. Name resolution: a path written in a module -> where it leads.


@dataclasses.dataclass(frozen=True)
class Place:
    """Where a path leads: a module of a crate of the package (`crate` set; `rest` names an item
    in it, if any) or a path into an outside crate (`crate` None, `outside` the full path).
    `via` lists the modules whose `use` was followed on the way (re-exports)."""

    crate: Crate | None
    module: ModPath = ()
    rest: tuple[str, ...] = ()
    outside: tuple[str, ...] = ()
    via: tuple[tuple[Crate, ModPath], ...] = ()

    def then(self, segments: tuple[str, ...]) -> "Place":
        if self.crate is None:
            return dataclasses.replace(self, outside=self.outside + segments)
        return dataclasses.replace(self, rest=self.rest + segments)

    def through(self, crate: Crate, module: ModPath) -> "Place":
        return dataclasses.replace(self, via=((crate, module),) + self.via)


class Resolver:
    def __init__(self, package: Package, ruled_crates: set[str]):
        self.package = package
        self.ruled_crates = ruled_crates
        self.memo: dict = {}

    def resolve(self, crate: Crate, module: ModPath, segments, local=False) -> Place | None:
        """Resolves `segments` as written in `module` (`local`: by that module's own code, which
        also sees the `use`s of its function bodies)."""
        first, rest = segments[0], tuple(segments[1:])
        if first == "::":
            return self.outside(rest)
        if first == "crate":
            return self.walk(crate, (), rest)
        if first == "self":
            return self.walk(crate, module, rest)
        if first == "super":
            supers = 1 + next((k for k, s in enumerate(rest) if s != "super"), len(rest))
            if supers > len(module):
                return None
            return self.walk(crate, module[: len(module) - supers], segments[supers:])
        if first == self.package.lib_name and crate.kind != "library" and self.package.library:
            return self.walk(self.package.library, (), rest)
        found = self.lookup(crate, module, first, local)
        if found is not None:
            return self.continue_from(found, rest)
        return self.outside(tuple(segments))

    def outside(self, segments) -> Place | None:
        if segments and segments[0] in self.ruled_crates:
            return Place(None, outside=tuple(segments))
        return None  # std, serde, a local variable...: not ruled

    def walk(self, crate: Crate, module: ModPath, segments) -> Place | None:
        if module not in crate.modules:
            return None
        if not segments:
            return Place(crate, module)
        found = self.lookup(crate, module, segments[0], local=False)
        if found is None:  # defined where we cannot see (a macro, a derive)
            return Place(crate, module, tuple(segments))
        return self.continue_from(found, tuple(segments[1:]))

    def continue_from(self, place: Place, rest) -> Place | None:
        if not rest:
            return place
        if place.crate is None or place.rest:
            return place.then(rest)
        onward = self.walk(place.crate, place.module, rest)
        return onward and dataclasses.replace(onward, via=place.via + onward.via)

    def lookup(self, crate: Crate, module: ModPath, name: str, local: bool) -> Place | None:
        """What `name` means inside `module`: a child module, an item, a `use`, a glob."""
        key = (id(crate), module, name, local)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = None  # a use cycle resolves to nothing
        self.memo[key] = found = self.lookup_uncached(crate, module, name, local)
        return found

    def lookup_uncached(self, crate, module, name, local) -> Place | None:
        m = crate.modules.get(module)
        if m is None:
            return None
        if name in m.children:
            return Place(crate, m.children[name])
        uses = [u for u in m.scope.uses if local or u.module_level]
        for use in uses:
            if use.name == name:
                target = self.resolve(crate, module, use.path)
                return target and target.through(crate, module)
        if name in m.scope.items:
            return Place(crate, module, (name,))
        for use in uses:
            if use.name == GLOB:
                found = self.through_glob(crate, module, use, name)
                if found is not None:
                    return found.through(crate, module)
        return None

    def through_glob(self, crate, module, use: Use, name: str) -> Place | None:
        target = self.resolve(crate, module, use.path)
        if target is None or target.crate is None or target.rest:
            return None  # a glob into an outside crate or an enum: cannot see its names
        found = self.lookup(target.crate, target.module, name, local=False)
        return found and dataclasses.replace(found, via=target.via + found.via)


# ---------------------------------------------------------------------------------------------
# 5. Rules: ci/layers.toml.


@dataclasses.dataclass(frozen=True)
class Rule:
    key: str  # "cluster", "driver::capability", "crate" (lib.rs), "[binary]", "[tests]"
    subtree: ModPath | None  # the library modules it covers (None: a binary or tests rule)
    uses: tuple[ModPath, ...]  # library modules it may import ("*" -> the whole library)
    crates: tuple[tuple[str, ...], ...]  # outside crates (or crate::module prefixes) it may use

    def may_import(self, target: ModPath) -> bool:
        if self.subtree is not None and target[: len(self.subtree)] == self.subtree:
            return True
        return any(target[: len(u)] == u for u in self.uses)

    def may_use_crate(self, path: tuple[str, ...]) -> bool:
        return any(path[: len(c)] == c for c in self.crates)

    def listed(self, field: str) -> str:
        names = ["::".join(x) or "*" for x in getattr(self, field)]
        return ", ".join(names) or "nothing"


def split(key: str) -> ModPath:
    return () if key in ("crate", "*") else tuple(key.split("::"))


class RulesError(Exception):
    pass


@dataclasses.dataclass
class Rules:
    file: pathlib.Path
    package_dir: str
    max_lines: int
    parent_edges: bool
    ruled_crates: set[str]
    library: dict[ModPath, Rule]
    binary: Rule
    tests: Rule
    network_item: ModPath
    network_constructors: set[str]
    network_allowed_in: tuple[ModPath, ...]

    @classmethod
    def load(cls, file: pathlib.Path) -> "Rules":
        data = tomllib.loads(file.read_text())
        refuse_unknown("the file", data, {"settings", "network", "library", "binary", "tests"})
        settings = data.get("settings", {})
        refuse_unknown("[settings]", settings,
                       {"package_dir", "max_lines", "parent_edges", "ruled_crates"})
        refuse_unknown("[network]", data.get("network", {}),
                       {"item", "constructors", "allowed_in"})
        ruled = set(settings.get("ruled_crates", []))
        library = {}
        for key, fields in data.get("library", {}).items():
            library[split(key)] = make_rule(key, split(key), fields)
        network = data.get("network", {})
        rules = cls(
            file=file,
            package_dir=settings.get("package_dir", "harness"),
            max_lines=settings.get("max_lines", 500),
            parent_edges=settings.get("parent_edges", True),
            ruled_crates=ruled,
            library=library,
            binary=make_rule("[binary]", None, data.get("binary", {})),
            tests=make_rule("[tests]", None, data.get("tests", {})),
            network_item=split(network.get("item", "cluster::Network")),
            network_constructors=set(network.get("constructors", [])),
            network_allowed_in=tuple(split(k) for k in network.get("allowed_in", [])),
        )
        rules.validate()
        return rules

    def validate(self) -> None:
        """A misspelt module or crate in the rules would silently allow nothing."""
        everything = list(self.library.values()) + [self.binary, self.tests]
        for rule in everything:
            for used in rule.uses:
                if used and used not in self.library:
                    raise RulesError(f"{rule.key}: uses {'::'.join(used)}, which has no rule")
            for c in rule.crates:
                if c[0] not in self.ruled_crates:
                    raise RulesError(f"{rule.key}: {'::'.join(c)} is not in ruled_crates")
        for allowed in self.network_allowed_in:
            if not any(allowed[:n] in self.library for n in range(1, len(allowed) + 1)):
                raise RulesError(f"[network] allowed_in {'::'.join(allowed)}, which has no rule")

    def rule_for(self, crate: Crate, module: ModPath) -> Rule | None:
        if crate.kind == "binary":
            return self.binary
        if crate.kind == "tests":
            return self.tests
        for n in range(len(module), 0, -1):
            if module[:n] in self.library:
                return self.library[module[:n]]
        return self.library.get(()) if module == () else None  # lib.rs's rule is its own


def refuse_unknown(where: str, table: dict, known: set[str]) -> None:
    """A misspelt key would silently fall back to a default."""
    unknown = set(table) - known
    if unknown:
        raise RulesError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")


def make_rule(key: str, subtree: ModPath | None, fields: dict) -> Rule:
    refuse_unknown(key, fields, {"uses", "crates"})
    uses = tuple(split(u) for u in fields.get("uses", []))
    crates = tuple(tuple(c.split("::")) for c in fields.get("crates", []))
    return Rule(key, subtree, uses, crates)


# ---------------------------------------------------------------------------------------------
# 6. The checks.


@dataclasses.dataclass(frozen=True)
class Import:
    """One import found in a file: a `use` leaf or a path written in code."""

    crate: Crate
    module: ModPath
    file: pathlib.Path
    line: int
    written: str
    place: Place
    declared: bool  # False when its first name comes from one of this module's `use`s (glob
    #                 included): that `use` line answers for it
    reexport: bool  # a `pub use` of one of the module's own descendants


@dataclasses.dataclass
class Report:
    problems: list[Problem]
    warnings: list[Problem]
    imports: list[Import]
    files: set[pathlib.Path]


def module_name(module: ModPath) -> str:
    return "::".join(module) or "crate"


def collect_imports(package: Package, resolver: Resolver) -> list[Import]:
    imports = []
    for crate in package.crates:
        for module in crate.modules.values():
            imports += module_imports(resolver, crate, module)
    return imports


def module_imports(resolver: Resolver, crate: Crate, module: Module) -> list[Import]:
    found = []
    answered_here = ((crate, module.path),)
    for use in module.scope.uses:
        place = resolver.resolve(crate, module.path, use.path)
        if place is not None:
            descendant = place.crate is crate and is_below(place.module, module.path)
            found.append(Import(crate, module.path, module.file, use.line, "::".join(use.path),
                                place, place.via[:1] != answered_here, use.public and descendant))
    for path in module.scope.paths:
        place = resolver.resolve(crate, module.path, path.segments, local=True)
        if place is not None:
            found.append(Import(crate, module.path, module.file, path.line,
                                "::".join(path.segments), place, place.via[:1] != answered_here,
                                False))
    return found


def is_below(module: ModPath, ancestor: ModPath) -> bool:
    return len(module) > len(ancestor) and module[: len(ancestor)] == ancestor


def modules_touched(imp: Import) -> list[tuple[Crate, ModPath]]:
    """The modules an import depends on: the module it ends in, and the modules whose re-exports
    it passes through, except the importer itself and its ancestors (the crate root among them),
    and except a facade: a module re-exporting from its own subtree (`driver::DriverKind` from
    `driver::kind` touches the leaf only, so a finer rule for the leaf can allow it)."""
    touched = []
    end = (imp.place.crate, imp.place.module)
    for crate, module in imp.place.via + (end,):
        if crate is None or (crate is imp.crate and imp.module[: len(module)] == module):
            continue
        if crate is end[0] and is_below(end[1], module):
            continue
        if (crate, module) not in touched:
            touched.append((crate, module))
    return touched


def check_imports(rules: Rules, imports: list[Import]) -> list[Problem]:
    """One problem per line and forbidden target, listing what the line imports from it."""
    found: dict[tuple, list[str]] = defaultdict(list)
    for imp in imports:
        rule = rules.rule_for(imp.crate, imp.module)
        if not imp.declared or rule is None:  # no rule: reported once per file by check_coverage
            continue
        who = rule.key
        for target in forbidden_modules(rules, rule, imp):
            why = f"{who} may use: {rule.listed('uses')}; {rules.file.name}"
            how = imp.written + (f" -> {module_name(imp.place.module)}" if imp.place.via else "")
            found[(imp.file, imp.line, f"{who} imports {target}", why)].append(how)
        outside = imp.place.outside
        if imp.place.crate is None and not rule.may_use_crate(outside):
            why = f"{who} may use the crates: {rule.listed('crates')}; {rules.file.name}"
            found[(imp.file, imp.line, f"{who} uses {outside[0]}", why)].append("::".join(outside))
    return [Problem(file, line, f"{what}: {abbreviated(hows)} ({why})")
            for (file, line, what, why), hows in found.items()]


def abbreviated(items: list[str], shown: int = 3) -> str:
    items = list(dict.fromkeys(items))
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def forbidden_modules(rules: Rules, rule: Rule, imp: Import) -> list[str]:
    """The rules (or modules, when they have none) of the library modules `imp` depends on
    that `rule` does not allow."""
    targets = []
    for crate, module in modules_touched(imp):
        if crate.kind == "library" and not rule.may_import(module):
            target_rule = rules.rule_for(crate, module)
            targets.append(target_rule.key if target_rule else module_name(module))
    return list(dict.fromkeys(targets))


def check_coverage(rules: Rules, package: Package, all_files: set[pathlib.Path]) -> list[Problem]:
    """Every file belongs to a module with a rule, and every file is compiled."""
    problems = []
    reported = set()
    for crate in package.crates:
        for module in crate.modules.values():
            if rules.rule_for(crate, module.path) is None and module.file not in reported:
                reported.add(module.file)
                problems.append(Problem(module.file, 1, (
                    f"module {module_name(module.path)} has no rule "
                    f"(every module needs one: add a line to [library] in {rules.file.name})")))
    for file in sorted(all_files - package.files()):
        problems.append(Problem(file, 1, (
            "not part of any crate: no `mod` declares it and it is no target's root "
            "(every file must belong to a module with a rule)")))
    return problems


def check_network(rules: Rules, imports: list[Import]) -> list[Problem]:
    """The Network is constructed only where [network] allows (every run goes through the
    Session)."""
    item_module, item_name = rules.network_item[:-1], rules.network_item[-1]
    problems = []
    for imp in imports:
        place = imp.place
        if place.crate is None or place.crate.kind != "library" or len(place.rest) != 2:
            continue
        if place.module[: len(item_module)] != item_module or place.rest[0] != item_name:
            continue
        if place.rest[1] not in rules.network_constructors:
            continue
        if imp.crate.kind == "library" and any(
            imp.module[: len(a)] == a for a in rules.network_allowed_in
        ):
            continue
        allowed = ", ".join(module_name(a) for a in rules.network_allowed_in)
        problems.append(Problem(imp.file, imp.line, (
            f"{item_name}::{place.rest[1]} outside {allowed}"
            f" (every run goes through the Session; [network] in {rules.file.name})")))
    return problems


def file_edges(imports: list[Import], parent_edges: bool = True):
    """file -> {file it imports from: first line}. An import points at the file defining the
    module it ends in (re-exports followed); a module's `pub use` of its own descendants
    declares its surface and is no edge. Without `parent_edges`, no use of a module's own
    descendants is an edge (the module's file is their hub, as with `mod x;`)."""
    edges: dict[pathlib.Path, dict[pathlib.Path, int]] = defaultdict(dict)
    for imp in imports:
        if imp.reexport or imp.place.crate is None:
            continue
        if not parent_edges and imp.place.crate is imp.crate and is_below(imp.place.module,
                                                                          imp.module):
            continue
        target = defining_file(imp.place.crate, imp.place.module)
        if target != imp.file:
            line = edges[imp.file].get(target, imp.line)
            edges[imp.file][target] = min(line, imp.line)
    return edges


def defining_file(crate: Crate, module: ModPath) -> pathlib.Path:
    """The file of `module`, or of its deepest ancestor that has one."""
    while module not in crate.modules:
        module = module[:-1]
    return crate.modules[module].file


def strongly_connected(edges) -> list[list[pathlib.Path]]:
    """Tarjan's algorithm: the groups of files that import each other in a cycle."""
    index: dict = {}
    low: dict = {}
    stack: list = []
    on_stack: set = set()
    groups = []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return groups


def shortest_cycle(edges, start, group: set) -> list:
    """The shortest chain of imports from `start` back to itself, within `group`."""
    parent = {start: None}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for w in sorted(edges.get(v, {})):
            if w == start:
                chain = [v]
                while parent[chain[-1]] is not None:
                    chain.append(parent[chain[-1]])
                return list(reversed(chain)) + [start]
            if w in group and w not in parent:
                parent[w] = v
                queue.append(w)
    return [start]


def check_cycles(edges, shown) -> list[Problem]:
    problems = []
    for group in strongly_connected(edges):
        start = group[0]
        cycle = shortest_cycle(edges, start, set(group))
        chain = " -> ".join(shown(f) for f in cycle)
        others = [shown(f) for f in group if f not in cycle]
        also = f"; the cycle's group also holds {', '.join(others)}" if others else ""
        problems.append(Problem(start, edges[start][cycle[1]], (
            f"file-level import cycle: {chain}{also} (no file-level cycles)")))
    return problems


def check_lengths(rules: Rules, files) -> list[Problem]:
    warnings = []
    for file in sorted(files):
        lines = file.read_text().count("\n")
        if lines > rules.max_lines:
            warnings.append(Problem(file, lines, (
                f"{lines} lines (over {rules.max_lines}: worth a look, but split by concern, "
                "not by size)")))
    return warnings


def check(root: pathlib.Path, rules: Rules) -> Report:
    package_dir = root / rules.package_dir
    package = Package(package_dir)
    resolver = Resolver(package, rules.ruled_crates)
    imports = collect_imports(package, resolver)
    all_files = set(package_dir.glob("src/**/*.rs")) | set(package_dir.glob("tests/**/*.rs"))

    def shown(f: pathlib.Path) -> str:
        return str(f.relative_to(root) if f.is_relative_to(root) else f)

    problems = list(package.problems)
    problems += check_coverage(rules, package, all_files)
    problems += check_imports(rules, imports)
    problems += check_network(rules, imports)
    problems += check_cycles(file_edges(imports, rules.parent_edges), shown)
    problems = sorted(set(problems), key=lambda p: (str(p.file), p.line, p.what))
    return Report(problems, check_lengths(rules, all_files), imports, all_files)


# ---------------------------------------------------------------------------------------------
# 7. Command line.


def show(root: pathlib.Path, p: Problem) -> str:
    file = p.file.relative_to(root) if p.file.is_relative_to(root) else p.file
    return f"{file}:{p.line}: {p.what}"


def print_graph(root: pathlib.Path, rules: Rules, report: Report, kind: str) -> None:
    if kind == "files":
        for src, targets in sorted(file_edges(report.imports, rules.parent_edges).items()):
            for dst, line in sorted(targets.items()):
                print(f"{src.relative_to(root)}:{line} -> {dst.relative_to(root)}")
        return
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for imp in report.imports:
        rule = rules.rule_for(imp.crate, imp.module)
        source = rule.key if rule else module_name(imp.module) + " (no rule)"
        if imp.place.crate is None:
            counts[(source, imp.place.outside[0])] += 1
        for crate, module in modules_touched(imp):
            if crate.kind == "library":
                target = rules.rule_for(crate, module)
                counts[(source, target.key if target else module_name(module))] += 1
    for (src, dst), n in sorted(counts.items()):
        if src != dst:
            print(f"{src} -> {dst} ({n})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=pathlib.Path, default=HERE.parent,
                        help="the workspace (default: this script's checkout)")
    parser.add_argument("--rules", type=pathlib.Path, default=HERE / "layers.toml")
    parser.add_argument("--graph", nargs="?", const="layers", choices=["layers", "files"],
                        help="print the edges found (between rules, or between files)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        rules = Rules.load(args.rules)
    except (RulesError, tomllib.TOMLDecodeError) as e:
        print(f"{args.rules}: {e}")
        return 1
    root = args.root.resolve()
    report = check(root, rules)
    if args.graph:
        print_graph(root, rules, report, args.graph)
        return 0
    for w in report.warnings:
        print(f"{show(root, w)} (warning)")
    for p in report.problems:
        print(show(root, p))
    took = time.monotonic() - started
    summary = (f"{len(report.files)} files, {len(report.imports)} imports, "
               f"{len(report.warnings)} warning(s), {took:.2f}s")
    if report.problems:
        print(f"check-layers: {len(report.problems)} problem(s) ({summary})")
        return 1
    print(f"check-layers: ok ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
