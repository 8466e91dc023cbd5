"""Benchmarks of nftwl's kernel updates, run by hand in a throwaway network namespace.

    .venv/bin/python bench/apply_bench.py [--reps 5] [--sizes 1000,5000,20000]

It re-executes itself under ``unshare --net`` so it never touches this machine's ruleset.
Two parts, each compared against a baseline measured in the same run (the machine is shared
and noisy, so ratios and medians, not absolute times, are what to quote):

1. crossover: on an interval set of N blocks, time a delta of k deletes (+k adds) against a
   full replace (flush + refill in one batch); fit the CostModel constants and report where the
   delta stops paying off, next to what nftwl's planner would choose.
2. aws: a full load of ../shared/data/real/cloud-aws.txt, a one-line change applied by nftwl
   (read live + plan + apply) against the naive baseline of replacing every set, and a no-op.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nftwl.costs import DEFAULT_COSTS
from nftwl.model import Action, IPv4Network, WhitelistContent
from nftwl.nftables_backend import NftablesBackend
from nftwl.parsing import parse_ports, parse_sources
from nftwl.planner import plan
from nftwl.ruleset import SetKind, SetSpec, desired_table
from nftwl.transaction import (
    AddElements,
    AddSet,
    AddTable,
    DeleteElements,
    FlushSet,
    Transaction,
)

AWS = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "cloud-aws.txt"


def median_time(fn: Callable[[], Any], reps: int, setup: Callable[[], Any] | None = None) -> float:
    times = []
    for _ in range(reps):
        if setup:
            setup()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def blocks(n: int, offset: int = 0) -> tuple[IPv4Network, ...]:
    return tuple(IPv4Network(((10 << 24) + (i + offset) * 256, 24)) for i in range(n))


def crossover(sizes: list[int], reps: int) -> None:
    print("\n## crossover: interval set, delta of k deletes + k adds vs full replace")
    print("| N | full replace (median) | k | delta | delta / replace | planner picks |")
    print("|---|---|---|---|---|---|")
    fits = []
    for n in sizes:
        be = NftablesBackend(f"bench{n}")
        spec = SetSpec("s", SetKind.V4_NETS)
        base = blocks(n)
        be.apply(Transaction(be.table, [AddTable(), AddSet(spec)]))

        def reset(base: tuple[IPv4Network, ...] = base, be: NftablesBackend = be) -> None:
            be.apply(Transaction(be.table, [FlushSet("s"), AddElements("s", base)]))

        reset()
        full = median_time(lambda: reset(), reps)
        for k in (1, 2, 4, 8, 16, 32):
            dels, adds = base[:k], blocks(k, n + 10)

            def delta(
                dels: tuple[IPv4Network, ...] = dels,
                adds: tuple[IPv4Network, ...] = adds,
                be: NftablesBackend = be,
            ) -> None:
                be.apply(Transaction(be.table, [DeleteElements("s", dels), AddElements("s", adds)]))

            d = median_time(delta, reps, setup=reset)
            picks = "replace" if DEFAULT_COSTS.prefer_replace(True, n, n, k, k) else "delta"
            row = [f"{n}", f"{full * 1000:.1f} ms", f"{k}", f"{d * 1000:.1f} ms"]
            print("| " + " | ".join([*row, f"{d / full:.2f}", picks]) + " |")
            fits.append((n, k, d, full))
        subprocess.run(["nft", "delete", "table", "inet", be.table], check=True)
    # In units of one element's bulk-load cost: delta/replace ~ fetch(n) + delete(n) * k.
    print("\n| N | fetch(n) measured | model | delete(n) measured | model |")
    print("|---|---|---|---|---|")
    c = DEFAULT_COSTS
    for n in sorted({f[0] for f in fits}):
        rows = [(k, d / full) for (m, k, d, full) in fits if m == n]
        slope = statistics.median(
            (r2 - r1) / (k2 - k1) for (k1, r1), (k2, r2) in itertools.pairwise(rows)
        )
        fetch = rows[0][1] - slope * rows[0][0]
        cells = [
            f"{fetch:.3f}",
            f"{c.fetch_base + c.fetch_growth * n:.3f}",
            f"{slope:.3f}",
            f"{c.delete_base + c.delete_growth * n:.3f}",
        ]
        print(f"| {n} | " + " | ".join(cells) + " |")


def aws(reps: int) -> None:
    print(f"\n## aws: {AWS.name}")
    parsed = parse_sources(AWS.read_text(), str(AWS))
    ports = parse_ports("443/tcp\n", "ports").ports
    content = WhitelistContent.build(parsed.v4, parsed.v6, ports)
    print(f"input {len(parsed.v4) + len(parsed.v6)} lines' blocks -> {content.summary()}")
    changed = WhitelistContent.build(
        (*content.v4[1:], IPv4Network("203.0.113.0/24")), content.v6, ports
    )
    be = NftablesBackend("aws")
    want = desired_table("aws", {"default": (content, Action.DROP)})
    want2 = desired_table("aws", {"default": (changed, Action.DROP)})

    def drop_table() -> None:
        subprocess.run(["nft", "delete", "table", "inet", "aws"], stderr=subprocess.DEVNULL)

    full = median_time(lambda: be.apply(plan(want, be.read())), reps, setup=drop_table)

    def back_to_v1() -> None:
        be.apply(plan(want, be.read()))

    one = median_time(lambda: be.apply(plan(want2, be.read())), reps, setup=back_to_v1)

    def naive() -> None:
        # Baseline: what a tool without a planner does, replace every set in one batch.
        tx = Transaction("aws")
        for name, s in want2.sets.items():
            tx.ops += (
                [FlushSet(name), AddElements(name, tuple(s.elements))]
                if s.elements
                else [FlushSet(name)]
            )
        be.apply(tx)

    base = median_time(naive, reps, setup=back_to_v1)
    noop = median_time(lambda: plan(want, be.read()), reps, setup=back_to_v1)
    # libnftables fills its cache from the whole ruleset before it changes a set, so other
    # tools' big sets slow nftwl's updates down even though nftwl never lists or touches them.
    other = NftablesBackend("othertool")
    other.apply(
        Transaction(
            "othertool",
            [AddTable(), AddSet(SetSpec("s", SetKind.V4_NETS)), AddElements("s", blocks(20000))],
        )
    )
    crowded = median_time(lambda: be.apply(plan(want2, be.read())), reps, setup=back_to_v1)
    print("| operation | median | vs naive full replace |")
    print("|---|---|---|")
    print(f"| full load into an empty table | {full * 1000:.1f} ms | |")
    print(f"| one-line change (read + plan + apply) | {one * 1000:.1f} ms | {one / base:.2f} |")
    print(f"| naive: replace all sets | {base * 1000:.1f} ms | 1.00 |")
    print(f"| no-op (read + plan, nothing written) | {noop * 1000:.1f} ms | {noop / base:.2f} |")
    print(
        f"| one-line change, another table holds a 20k-block set | {crowded * 1000:.1f} ms "
        f"| {crowded / base:.2f} |"
    )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--sizes", default="1000,5000,20000")
    args = ap.parse_args()
    if os.environ.get("NFTWL_BENCH_NETNS") != "1":
        env = {**os.environ, "NFTWL_BENCH_NETNS": "1"}
        return subprocess.run(["unshare", "--net", sys.executable, *sys.argv], env=env).returncode
    # The variable alone proves nothing: a fresh namespace holds only loopback.
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    if len(links.splitlines()) != 1:
        print("apply_bench: not in a fresh network namespace; refusing", file=sys.stderr)
        return 2
    print(f"# nftwl apply bench, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, kernel {platform.release()}")
    crossover([int(s) for s in args.sizes.split(",")], args.reps)
    aws(args.reps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
