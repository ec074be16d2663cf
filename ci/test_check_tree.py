#!/usr/bin/env python3
"""Tests of ci/check-tree.py (stdlib only; run as `python3 ci/test_check_tree.py`).

Each test writes a small workspace into a temporary directory (a member with a library, a
module directory, a test; a document with the markers; ci/tree.toml describing the rest), runs
the checker on it as CI does, and looks at its exit code, its output and the document. So a
test that expects a failure proves the checker refuses exactly that change.
"""
import contextlib
import importlib.util
import io
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts
HERE = pathlib.Path(__file__).resolve().parent


def load_checker():
    spec = importlib.util.spec_from_file_location("check_tree", HERE / "check-tree.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_tree"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


ct = load_checker()

TREE_TOML = """\
[settings]
document = "ARCHITECTURE.md"
width = 100
ignore = [".git", "target", "__pycache__", "*.pyc"]
collapse = ["data/*.toml"]

[describe]
"Cargo.toml" = "the workspace"
"data/" = "data files, one per case"
"ci/tree.toml" = "descriptions"
"ARCHITECTURE.md" = "this page"
"""

BASE = {
    "Cargo.toml": '[workspace]\nmembers = ["alpha"]\n',
    "alpha/Cargo.toml": '[package]\nname = "alpha"\ndescription = "The first crate"\n',
    "alpha/src/lib.rs": "//! Alpha: the library. It has more to say.\npub mod shapes;\n",
    "alpha/src/shapes/mod.rs": "//! Shapes, one per file (e.g. circles).\n//!\n//! Details.\n",
    "alpha/src/shapes/circle.rs": "#![allow(dead_code)]\n//! A circle: `r.0` is its radius.\n",
    "alpha/tests/basic.rs": "// SPDX\n//! The basics, end to end.\n",
    "data/one.toml": "x = 1\n",
    "data/two.toml": "x = 2\n",
    "ci/tree.toml": TREE_TOML,
    "ARCHITECTURE.md": "# Architecture\n\n<!-- tree:begin -->\n<!-- tree:end -->\n\nMore.\n",
}


class Workspace:
    """A temporary workspace the checker runs on."""

    def __init__(self, files=BASE):
        self.dir = tempfile.TemporaryDirectory()
        self.root = pathlib.Path(self.dir.name)
        for path, text in files.items():
            self.write(path, text)

    def write(self, path, text):
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")

    def run(self, *args):
        """(exit code, everything printed) of the checker with `args`."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = ct.main(["--root", str(self.root), *args])
        return code, out.getvalue()

    def document(self):
        return (self.root / "ARCHITECTURE.md").read_text(encoding="utf-8")

    def close(self):
        self.dir.cleanup()


class CheckTreeTest(unittest.TestCase):
    def setUp(self):
        self.ws = Workspace()
        self.addCleanup(self.ws.close)

    def test_write_then_check_passes_and_the_tree_reads_as_intended(self):
        code, out = self.ws.run("--write")
        self.assertEqual(code, 0, out)
        self.assertEqual(self.ws.run(), (0, ""))
        document = self.ws.document()
        self.assertTrue(document.startswith("# Architecture\n\n<!-- tree:begin -->\n```\n"))
        self.assertTrue(document.endswith("```\n<!-- tree:end -->\n\nMore.\n"))
        tree = document.split("```\n")[1].splitlines()
        self.assertEqual(
            tree,
            [
                "Cargo.toml        the workspace",
                "alpha/            package `alpha`: the first crate",
                "  src/lib.rs      alpha: the library",
                "  src/shapes/     shapes, one per file (e.g. circles)",
                "    circle.rs     a circle: `r.0` is its radius",
                "  tests/basic.rs  the basics, end to end",
                "data/             data files, one per case",
                "ci/tree.toml      descriptions",
                "ARCHITECTURE.md   this page",
            ],
        )

    def test_a_new_file_fails_the_check_until_the_tree_is_regenerated(self):
        self.assertEqual(self.ws.run("--write")[0], 0)
        self.ws.write("alpha/src/shapes/square.rs", "//! A square.\n")
        code, out = self.ws.run()
        self.assertEqual(code, 1)
        self.assertIn("+    square.rs     a square", out)
        self.assertIn("out of date: run `python3 ci/check-tree.py --write`", out)
        self.assertEqual(self.ws.run("--write")[0], 0)
        self.assertEqual(self.ws.run(), (0, ""))

    def test_a_removed_file_fails_the_check_until_the_tree_is_regenerated(self):
        self.assertEqual(self.ws.run("--write")[0], 0)
        (self.ws.root / "alpha/tests/basic.rs").unlink()
        code, out = self.ws.run()
        self.assertEqual(code, 1)
        self.assertIn("-  tests/basic.rs", out)

    def test_a_changed_module_doc_fails_the_check(self):
        self.assertEqual(self.ws.run("--write")[0], 0)
        self.ws.write("alpha/src/shapes/circle.rs", "//! A round shape.\n")
        code, out = self.ws.run()
        self.assertEqual(code, 1)
        self.assertIn("+    circle.rs     a round shape", out)

    def test_a_rust_file_without_a_module_doc_fails_and_nothing_is_written(self):
        self.ws.write("alpha/src/shapes/bare.rs", "pub struct Bare;\n")
        before = self.ws.document()
        for args in ((), ("--write",), ("--print",)):
            code, out = self.ws.run(*args)
            self.assertEqual(code, 1, args)
            self.assertIn("alpha/src/shapes/bare.rs: no module doc", out)
        self.assertEqual(self.ws.document(), before)

    def test_a_non_rust_entry_without_a_description_fails(self):
        self.ws.write("notes.txt", "todo\n")
        self.ws.write("ci/run.sh", "#!/bin/sh\n")
        code, out = self.ws.run()
        self.assertEqual(code, 1)
        self.assertIn("notes.txt: no description (not a Rust file", out)
        self.assertIn("ci/run.sh: no description", out)

    def test_a_directory_without_a_hub_needs_a_description(self):
        self.ws.write("alpha/src/bin/a.rs", "//! A.\n")
        self.ws.write("alpha/src/bin/b.rs", "//! B.\n")
        code, out = self.ws.run()
        self.assertEqual(code, 1)
        self.assertIn("alpha/src/bin/: no description (a directory without mod.rs", out)

    def test_a_stale_description_fails(self):
        self.ws.write("ci/tree.toml", TREE_TOML + '"gone.md" = "removed long ago"\n')
        code, out = self.ws.run()
        self.assertEqual(code, 1)
        self.assertIn('[describe] "gone.md" is not listed (stale', out)

    def test_a_directory_with_a_sibling_file_is_one_line_and_a_lone_file_folds_its_directory(self):
        self.ws.write("alpha/src/rpc.rs", "//! The RPC.\n")
        self.ws.write("alpha/src/rpc/limits.rs", "//! Its limits.\n")
        self.ws.write("examples/demo.sh", "#!/bin/sh\n")
        self.ws.write("ci/tree.toml", TREE_TOML + '"examples/demo.sh" = "a demo"\n')
        code, out = self.ws.run("--print")
        self.assertEqual(code, 0, out)
        self.assertIn("  src/rpc.rs, rpc/  the RPC\n    limits.rs       its limits\n", out)
        self.assertIn("examples/demo.sh    a demo\n", out)
        self.assertNotIn("  src/rpc.rs   ", out)

    def test_ignored_and_collapsed_files_are_not_listed(self):
        self.ws.write("target/debug/x.rs", "")
        self.ws.write("ci/__pycache__/check.pyc", "")
        code, out = self.ws.run("--print")
        self.assertEqual(code, 0, out)
        self.assertNotIn("target", out)
        self.assertNotIn("pycache", out)
        self.assertNotIn("one.toml", out)

    def test_missing_markers_are_a_usage_error(self):
        self.ws.write("ARCHITECTURE.md", "# Architecture\n")
        code, out = self.ws.run()
        self.assertEqual(code, 2)
        self.assertIn("no `<!-- tree:begin -->` ... `<!-- tree:end -->` markers", out)

    @unittest.skipUnless(shutil.which("git"), "needs git")
    def test_in_a_git_work_tree_new_files_count_and_ignored_ones_do_not(self):
        def git(*args):
            subprocess.run(["git", "-C", str(self.ws.root), *args], check=True, capture_output=True)

        git("init", "-q")
        self.ws.write(".gitignore", "/scratch/\n")
        self.ws.write("ci/tree.toml", TREE_TOML + '".gitignore" = "what git ignores"\n')
        self.ws.write("scratch/junk.rs", "no doc here\n")
        self.assertEqual(self.ws.run("--write")[0], 0)
        self.assertNotIn("scratch", self.ws.document())
        # Untracked but not ignored: listed at once, so the check fails until regenerated.
        self.ws.write("alpha/src/new.rs", "//! Brand new.\n")
        code, out = self.ws.run()
        self.assertEqual(code, 1)
        self.assertIn("+  src/new.rs", out)


class DescriptionTest(unittest.TestCase):
    def test_first_sentence_of_the_module_doc(self):
        cases = {
            "//! One. Two.\n": "One",
            "//! Ends with a colon:\n//!\n//! ```text\n//! x\n//! ```\n": "Ends with a colon",
            "//! Spans\n//! lines. Then.\n": "Spans lines",
            "//! A `x.y` path and e.g. an aside. Next.\n": "A `x.y` path and e.g. an aside",
            "//! Dots in (a. b) brackets. Next.\n": "Dots in (a. b) brackets",
            "//! Version 0.35 s here. Next.\n": "Version 0.35 s here",
            "//! The [`Step`] enum and [`run`](Self::run). Next.\n": "The `Step` enum and `run`",
            "//! A [link](https://example.invalid/x). Next.\n": "A link",
            "//! Lead:\n//! - item one.\n": "Lead",
            "use x;\n//! Not leading.\n": "",
            "// plain\n\n#![allow(x)]\n//! After a comment. Next.\n": "After a comment",
            "pub fn f() {}\n": "",
        }
        for text, want in cases.items():
            with self.subTest(text=text):
                self.assertEqual(ct.first_sentence(ct.module_doc(text)), want)

    def test_lower_first_keeps_names(self):
        self.assertEqual(ct.lower_first("The ledger"), "the ledger")
        self.assertEqual(ct.lower_first("A node"), "a node")
        for name in ("RocksDB backend", "UNSAFE points", "Fiber's tests", "`dlp-node` x"):
            self.assertEqual(ct.lower_first(name), name)

    def test_fit_drops_parentheses_then_clips_outside_code(self):
        self.assertEqual(ct.fit("short", 10), "short")
        self.assertEqual(ct.fit("keep this (not this) part", 20), "keep this part")
        clipped = ct.fit("one clause, then `a long code span that must stay whole` more", 40)
        self.assertEqual(clipped, "one clause, then…")
        clipped = ct.fit("words and more words and yet more words here", 20)
        self.assertEqual(clipped, "words and more…")
        self.assertLessEqual(len(clipped), 20)
        text = textwrap.dedent(
            """\
            the run: session, record, failure report and runner, each in a file of its own, and
            more"""
        ).replace("\n", " ")
        self.assertEqual(ct.fit(text, 60), "the run: session, record, failure report and runner…")


if __name__ == "__main__":
    unittest.main()
