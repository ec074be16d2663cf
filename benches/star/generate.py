#!/usr/bin/env python3
"""Write the star scenarios of the network-size benchmark: star_<N>.toml for N nodes (a hub and
N-1 leaves, a channel each), a payment from the hub on each channel, the hub backed up,
restored, and audited by every leaf (each audit must pass: nothing moved since the backup).

    python3 benches/star/generate.py 10 25 50 100     # writes benches/star/star_<N>.toml

The files are committed; benches/star/run.sh times them."""
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent


def scenario(n: int) -> str:
    leaves = [f"n{i:03d}" for i in range(1, n)]
    out = [
        f'description = """',
        f"Network size: a star of {n} nodes (hub and {n - 1} leaves, a channel each). The hub pays",
        "every leaf once, is backed up, restored, and every leaf reconnects: each audit passes",
        "(nothing moved since the backup). Written by benches/star/generate.py; timed by",
        "benches/star/run.sh.",
        '"""',
        "topology = { shape = \"star\", nodes = [" + ", ".join(f'"{x}"' for x in ["hub"] + leaves) + "], amount = 1_000_000 }",
        "",
        "[nodes.hub]",
    ]
    out += [f"[nodes.{leaf}]" for leaf in leaves]
    out.append("")
    for leaf in leaves:
        out += ["[[steps]]", f'pay = {{ from = "hub", to = "{leaf}", amount = 1_000, route = ["{leaf}"] }}']
    out += ["[[steps]]", 'backup = { node = "hub", name = "paid" }']
    out += ["[[steps]]", 'restore = { node = "hub", backup = "paid" }']
    for leaf in leaves:
        out += ["[[steps]]", f'connect = {{ from = "{leaf}", to = "hub" }}']
    for leaf in leaves:
        out += ["[[steps]]", f'expect_audit = {{ node = "hub", channel = "hub-{leaf}", outcome = "passed" }}']
    return "\n".join(out) + "\n"


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [10, 25, 50, 100]
    for n in sizes:
        if n < 2:
            sys.exit("a star needs at least 2 nodes")
        path = HERE / f"star_{n}.toml"
        path.write_text(scenario(n))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
