"""The central promise, under real traffic: an address kept across an update is never absent.

A client from a whitelisted loopback address connects to a protected port in a tight loop while
the whitelist is rewritten in every way the planner knows: deltas, full replaces of an interval
set (flush + refill in one batch), and the client's own address moving between the hosts set
and the networks set. One dropped SYN would show as a connect timeout.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from pathlib import Path

from nftwl.model import Action, IPv4Network, PortRange, Proto, WhitelistContent
from nftwl.nftables_backend import NftablesBackend
from nftwl.planner import plan
from nftwl.ruleset import desired_table

PORT = 7001
CLIENT = "127.0.0.2"


def listen_overflows() -> int:
    """TcpExtListenOverflows of the calling thread's network namespace."""
    lines = Path("/proc/thread-self/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split(), values.split(), strict=True))["ListenOverflows"])
    raise AssertionError("no TcpExt line in netstat")


class ClientLoop:
    """Connects from CLIENT to 127.0.0.1:PORT until stopped; counts successes and failures."""

    def __init__(self) -> None:
        self.ok = 0
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", PORT))
        self.server.listen(4096)
        self.server.settimeout(0.2)
        # Threads started here are born in the test's network namespace.
        self.threads = [
            threading.Thread(target=self._accept, daemon=True),
            threading.Thread(target=self._connect, daemon=True),
        ]
        for t in self.threads:
            t.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            conn.close()

    def _connect(self) -> None:
        deadline = time.monotonic() + 60  # bounded even if the test forgets to stop us
        while not self.stop.is_set() and time.monotonic() < deadline:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(1.0)
            try:
                s.bind((CLIENT, 0))
                s.connect(("127.0.0.1", PORT))
                self.ok += 1
            except OSError as exc:
                self.failures.append(repr(exc))
            finally:
                s.close()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=5)
        self.server.close()


def _content(client_block: str, others: list[IPv4Network]) -> WhitelistContent:
    return WhitelistContent.build(
        [IPv4Network(client_block), *others], [], [PortRange(Proto.TCP, PORT, PORT)]
    )


def _blocks(start: int, count: int) -> list[IPv4Network]:
    return [
        IPv4Network((int(ipaddress.IPv4Address("10.0.0.0")) + (start + i) * 512, 24))
        for i in range(count)
    ]


class TestNoEmptyWindow:
    def test_kept_client_never_dropped_across_deltas_replaces_and_set_moves(self) -> None:
        """Zero failed connections while 70 updates replace, delta and move the client's entry."""
        backend = NftablesBackend("nftwl")
        backend.apply(
            plan(
                desired_table("nftwl", {"w": (_content(CLIENT, _blocks(0, 500)), Action.DROP)}),
                None,
            )
        )
        client = ClientLoop()
        kinds: set[str] = set()
        try:
            for i in range(70):
                # Even rounds: the client is a single address (hosts set); odd rounds: inside a
                # /30 (networks set). The first 20 rounds swap 300 of the 500 other blocks, so
                # the planner replaces the networks set whole; the last 50 change one block.
                block = CLIENT if i % 2 == 0 else "127.0.0.0/30"
                if i < 20:
                    others = _blocks(0, 200) + _blocks(600 + i * 300, 300)
                else:
                    others = _blocks(0, 499) + _blocks(20000 + i, 1)
                want = desired_table("nftwl", {"w": (_content(block, others), Action.DROP)})
                for _ in range(3):  # as the reconciler does: a bridge step, then the rest
                    tx = plan(want, backend.read())
                    backend.apply(tx)
                    change = tx.changes.get("w_v4_nets")
                    if change is not None:
                        kinds.add(
                            "bridge" if tx.partial else "replace" if change.replaced else "delta"
                        )
                    if not tx.partial:
                        break
                assert not plan(want, backend.read()), "not converged"
                time.sleep(0.02)
        finally:
            client.finish()
        assert kinds == {"bridge", "replace", "delta"}, f"every update kind must run, saw {kinds}"
        assert client.ok > 100, f"the client loop barely ran ({client.ok} connections)"
        # The firewall's own verdict: nftwl's guard rule never dropped the kept client.
        assert backend.counters()["nftwl/1 w ipv4 drop"] == (0, 0)
        # And no connection failed for another reason than the test's accept thread lagging
        # behind (a full listen queue is the kernel's doing, counted apart).
        assert len(client.failures) <= listen_overflows(), client.failures[:5]

    def test_removed_client_is_dropped(self) -> None:
        """The same loop sees failures once the client really leaves the list (it can fail)."""
        backend = NftablesBackend("nftwl")
        backend.apply(
            plan(desired_table("nftwl", {"w": (_content(CLIENT, []), Action.DROP)}), None)
        )
        client = ClientLoop()
        try:
            time.sleep(0.2)
            backend.apply(
                plan(
                    desired_table("nftwl", {"w": (_content("127.0.0.9", []), Action.DROP)}),
                    backend.read(),
                )
            )
            time.sleep(1.5)
        finally:
            client.finish()
        assert client.ok > 0
        assert client.failures, "connections from a removed source must fail"
        packets, _ = backend.counters()["nftwl/1 w ipv4 drop"]
        assert packets >= len(client.failures)

    def test_source_and_port_removed_together_never_drop_the_client(self) -> None:
        """A client that is whitelisted for a port, then neither listed nor protected, is
        allowed before and after every update, so none of its packets is dropped in between
        (a UDP flood: far more packets per update than a connect loop)."""
        backend = NftablesBackend("nftwl")
        other = PortRange(Proto.UDP, 7002, 7002)
        listed = WhitelistContent.build(
            [IPv4Network(CLIENT), *_blocks(0, 50)], [], [PortRange(Proto.UDP, PORT, PORT), other]
        )
        unlisted = WhitelistContent.build(_blocks(0, 50), [], [other])
        backend.apply(plan(desired_table("nftwl", {"w": (listed, Action.DROP)}), None))
        stop = threading.Event()
        sent = 0

        def flood() -> None:
            nonlocal sent
            deadline = time.monotonic() + 30
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((CLIENT, 0))
                while not stop.is_set() and time.monotonic() < deadline:
                    with contextlib.suppress(OSError):
                        s.sendto(b"x", ("127.0.0.1", PORT))
                        sent += 1

        sender = threading.Thread(target=flood, daemon=True)
        sender.start()
        bridges = 0
        try:
            for i in range(200):
                content = unlisted if i % 2 == 0 else listed
                want = desired_table("nftwl", {"w": (content, Action.DROP)})
                for _ in range(3):
                    tx = plan(want, backend.read())
                    backend.apply(tx)
                    bridges += tx.partial
                    if not tx.partial:
                        break
        finally:
            stop.set()
            sender.join(timeout=5)
        assert bridges == 200, "removing and re-adding both must go through the bridge"
        assert sent > 1000
        assert backend.counters()["nftwl/1 w ipv4 drop"] == (0, 0)
