"""Churn: the whitelist file rewritten many times, in every way writers do, under live traffic."""

from __future__ import annotations

import random
import time
from pathlib import Path

from nftwl.sources.files import load_files
from tests.kernel.helpers import write_config
from tests.kernel.watch_helpers import (
    Acceptor,
    ClientLoop,
    LivePoller,
    lines,
    replace_atomically,
    running_daemon,
    write_text,
)

CLIENT = "127.0.0.2"
SERVER = "127.0.0.1"

# Entries that churn around the client's address. Some overlap each other or the client (so
# addresses move between the hosts and networks sets), some are adjacent (and collapse).
POOL = [
    *(f"10.0.0.{i}" for i in range(1, 41)),
    "10.0.0.0/26",
    "10.0.1.0/24",
    "198.51.100.0/25",
    "198.51.100.128/25",
    "203.0.113.0/24",
    "192.0.2.100-192.0.2.120",
    "127.0.0.0/30",
    "127.0.0.0/29",
    "127.0.0.3",
    "2001:db8::1",
    "2001:db8::2",
    "2001:db8:1::/48",
    "2001:db8::/32",
]


def render(rng: random.Random) -> str:
    """A new version of the file. The client's line comes first and is never changed, so even
    a reader that catches an in-place write half done sees it."""
    entries = rng.sample(POOL, rng.randint(0, 25))
    if rng.random() < 0.2:
        entries.insert(rng.randint(0, len(entries)), "# churn comment")
    return lines(CLIENT, *entries)


def rewrite(path: Path, text: str, how: str, rng: random.Random) -> None:
    if how == "rename":
        replace_atomically(path, text)
    elif how == "truncate":
        with open(path, "w", encoding="utf-8") as fh:
            fh.flush()  # zero bytes on disk now
            time.sleep(rng.choice([0.0, 0.005, 0.03]))
            fh.write(text)
    else:  # in place: overwrite from the start, then cut the old tail off
        data = text.encode()
        with open(path, "r+b") as fh:
            fh.write(data)
            fh.flush()
            fh.truncate(len(data))


class TestChurn:
    def test_churn_200_rewrites(self, tmp_path: Path) -> None:
        """200 rewrites by rename, truncate-then-write and in-place write never fail an allowed
        client's connection, and the kernel ends up holding exactly the final file."""
        rng = random.Random(200)
        d_ = tmp_path / "d"
        d_.mkdir()
        ips, ports = d_ / "whiteiplist.txt", d_ / "whiteportlist.txt"
        with Acceptor(SERVER) as srv:
            write_text(ips, lines(CLIENT, "10.0.0.1"))
            write_text(ports, lines(f"{srv.port}/tcp", "8443"))
            config = write_config(
                tmp_path / "nftwl.toml",
                {"default": {"sources": ips, "ports": ports}},
                state_dir=tmp_path / "state",
                debounce_ms=100,
                settle_seconds=0.3,
            )
            with running_daemon(config) as d:
                before = d.writes
                with (
                    ClientLoop(CLIENT, SERVER, srv.port) as client,
                    LivePoller(d.settings.table, [CLIENT]) as poll,
                ):
                    hows = ["rename", "truncate", "inplace"] * 67
                    rng.shuffle(hows)
                    for how in hows[:200]:
                        rewrite(ips, render(rng), how, rng)
                        time.sleep(rng.choice([0.0, 0.005, 0.02, 0.12]))
                    d.quiesce()
                client.assert_clean(min_ok=500)
                poll.assert_clean(min_reads=100)

                final = load_files(ips, ports)
                assert final.unavailable is None and not final.errors
                assert d.live() == final.content
                assert d.writes - before >= 20, "the churn hardly reached the kernel"
