"""Helpers for the watcher and churn tests: the real daemon loop in a thread, watched closely.

- :func:`running_daemon` runs ``nftwl.daemon.run`` with a real :class:`FileSource` and a real
  :class:`NftablesBackend`, both instrumented: every kernel write is recorded, and
  :meth:`DaemonHandle.quiesce` waits until every file event made so far has been handled.
- :class:`LivePoller` reads the live whitelist from the kernel in a loop (its own libnftables
  context) and records every sample that lacked an address that must stay, or held one that
  must never appear.
- :class:`Acceptor` and :class:`ClientLoop`: a protected TCP listener on loopback and a client
  that connects to it from a given source address again and again, counting failures.

Threads inherit the network namespace of the thread that starts them, so everything here must
be created and started from a kernel test's own thread (the ``netns`` fixture's namespace).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nftwl import daemon
from nftwl.model import WhitelistContent
from nftwl.nftables_backend import NftablesBackend
from nftwl.ruleset import TableState, content_of
from nftwl.settings import Settings, load_settings
from nftwl.sources.base import LoadResult
from nftwl.sources.files import FileSource
from nftwl.transaction import Transaction

WHITELIST = "default"
_RST_ON_CLOSE = struct.pack("ii", 1, 0)
"""SO_LINGER {on, 0}: close() sends RST, so neither side keeps a TIME_WAIT socket."""


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.01) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(step)


# -- files, written the way the field cases write them ----------------------------------------


def write_text(path: Path, text: str) -> None:
    """``printf ... > path``: open with O_TRUNC, write, close (no fsync, like a shell)."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def replace_atomically(path: Path, text: str, stage: Path | None = None) -> Path:
    """Write a stage file next to ``path`` and rename it over ``path`` (confd, ``mv``)."""
    stage = stage or path.with_name(f".{path.name}{random.randrange(10**8, 10**9)}")
    write_text(stage, text)
    os.replace(stage, path)
    return stage


def lines(*entries: str) -> str:
    return "".join(f"{e}\n" for e in entries)


def nets(*entries: str) -> set[ipaddress.IPv4Network]:
    """IPv4 entries as nftwl normalises them (collapsed: .10 and .11 become .10/31)."""
    return set(ipaddress.collapse_addresses(ipaddress.IPv4Network(e) for e in entries))


# -- the kernel ---------------------------------------------------------------------------------


class CountingBackend:
    """The real NftablesBackend, recording every kernel write (apply of a non-empty transaction)."""

    def __init__(self, table: str) -> None:
        self.inner = NftablesBackend(table)
        self.table = table
        self.writes: list[tuple[float, str]] = []
        """(monotonic time the apply returned, what it changed), in order."""
        self._lock = threading.Lock()

    def read(self) -> TableState | None:
        return self.inner.read()

    def counters(self) -> dict[str, tuple[int, int]]:
        return self.inner.counters()

    def present(self) -> bool:
        return self.inner.present()

    def apply(self, tx: Transaction) -> None:
        if not tx:
            self.inner.apply(tx)
            return
        try:
            self.inner.apply(tx)
        finally:
            with self._lock:
                self.writes.append((time.monotonic(), tx.describe()))


def live_content(backend: NftablesBackend, whitelist: str = WHITELIST) -> WhitelistContent:
    """The whitelist as the kernel holds it now (empty if the table does not exist)."""
    live = backend.read()
    return WhitelistContent() if live is None else content_of(live, whitelist)


def covers(content: WhitelistContent, address: str) -> bool:
    addr = ipaddress.ip_address(address)
    return any(addr in n for n in (content.v4 if addr.version == 4 else content.v6))


class LivePoller:
    """Reads the live whitelist in a loop from its own thread and libnftables context.

    ``missing`` collects samples without an address of ``must_have``; ``leaked`` samples with an
    address of ``must_not_have``. Use as a context manager; :attr:`reads` proves it ran.
    """

    def __init__(
        self,
        table: str,
        must_have: Iterable[str] = (),
        must_not_have: Iterable[str] = (),
        whitelist: str = WHITELIST,
    ) -> None:
        self.backend = NftablesBackend(table)
        self.whitelist = whitelist
        self.must_have = list(must_have)
        self.must_not_have = list(must_not_have)
        self.reads = 0
        self.missing: list[tuple[float, str, str]] = []
        self.leaked: list[tuple[float, str, str]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-poller", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                c = live_content(self.backend, self.whitelist)
            except Exception as exc:  # recorded and asserted on by the test
                self.errors.append(repr(exc))
                time.sleep(0.01)
                continue
            now = time.monotonic()
            shown = str(c.to_json()["v4"])
            self.missing += [(now, a, shown) for a in self.must_have if not covers(c, a)]
            self.leaked += [(now, a, shown) for a in self.must_not_have if covers(c, a)]
            self.reads += 1
            time.sleep(0.001)

    def __enter__(self) -> LivePoller:
        self._thread.start()
        wait_for(lambda: self.reads or self.errors, 5, "the first poll of the live set")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        assert not self._thread.is_alive(), "poller thread did not stop"

    def assert_clean(self, min_reads: int = 10) -> None:
        assert not self.errors, f"reading the live set failed: {self.errors[:3]}"
        assert self.reads >= min_reads, f"only {self.reads} polls of the live set"
        assert not self.missing, f"{len(self.missing)} polls lacked an address: {self.missing[:3]}"
        assert not self.leaked, (
            f"{len(self.leaked)} polls held a forbidden address: {self.leaked[:3]}"
        )


# -- the daemon ---------------------------------------------------------------------------------


class ObservedSource(FileSource):
    """The real FileSource, recording when the daemon asked for the next event batch.

    The daemon handles one batch (or tick) at a time and asks for the next only when done, so
    "the generator was resumed after yielding the batch it got at time t" means every file event
    that reached the watcher before t has been handled.
    """

    def __init__(self, files: dict[str, tuple[Path, Path]], debounce_ms: int) -> None:
        super().__init__(files, debounce_ms)
        self.ready = threading.Event()
        self.loads = 0
        self.handled_until = float("-inf")
        self.relevant_batches = 0

    def load(self) -> dict[str, LoadResult]:
        self.loads += 1
        return super().load()

    def changes(self, stop: threading.Event, tick_ms: int) -> Iterator[bool]:
        for changed in super().changes(stop, tick_ms):
            got = time.monotonic()
            self.ready.set()
            yield changed
            self.relevant_batches += changed
            self.handled_until = got


@dataclass
class DaemonHandle:
    settings: Settings
    backend: CountingBackend
    source: ObservedSource
    stop: threading.Event
    error: BaseException | None = None
    probe: NftablesBackend = field(init=False)

    def __post_init__(self) -> None:
        self.probe = NftablesBackend(self.settings.table)

    @property
    def writes(self) -> int:
        return len(self.backend.writes)

    @property
    def state_dir(self) -> Path:
        return self.settings.state_dir

    def live(self) -> WhitelistContent:
        return live_content(self.probe)

    def quiesce(self, timeout: float = 5.0) -> None:
        """Wait until every file event made before this call has been handled by the daemon.

        A batch the watcher hands over at time t holds every event collected before t; the
        margin covers the inotify reader thread's delay. With no events a timeout tick (every
        ``daemon.TICK_MS``) serves as the batch.
        """
        mark = time.monotonic() + 0.2
        wait_for(lambda: self.source.handled_until > mark, timeout, "the daemon to go idle")
        assert self.error is None, f"daemon failed: {self.error!r}"

    def wait_live(
        self, predicate: Callable[[WhitelistContent], bool], timeout: float, what: str
    ) -> WhitelistContent:
        """Poll the kernel until the live whitelist satisfies ``predicate``; return it."""

        def check() -> WhitelistContent | None:
            c = self.live()
            return c if predicate(c) else None

        result: WhitelistContent = wait_for(check, timeout, what, step=0.005)
        return result


@contextlib.contextmanager
def running_daemon(config: Path) -> Iterator[DaemonHandle]:
    """Run the real daemon loop on ``config`` in a thread until the block ends.

    Yields once the initial reconcile is done and the watcher is delivering batches.
    """
    settings = load_settings(config)
    handle = DaemonHandle(
        settings,
        CountingBackend(settings.table),
        ObservedSource(settings.watched_files(), settings.debounce_ms),
        threading.Event(),
    )

    def main() -> None:
        try:
            daemon.run(settings, handle.backend, handle.source, handle.stop)
        except BaseException as exc:
            handle.error = exc

    thread = threading.Thread(target=main, name="nftwl-daemon", daemon=True)
    thread.start()
    try:
        wait_for(
            lambda: handle.source.ready.is_set() or handle.error,
            10,
            "the daemon to start watching",
        )
        assert handle.error is None, f"daemon failed to start: {handle.error!r}"
        yield handle
    finally:
        handle.stop.set()
        thread.join(5)
    assert not thread.is_alive(), "daemon did not stop within 5 s of the stop event"
    assert handle.error is None, f"daemon failed: {handle.error!r}"


# -- traffic ------------------------------------------------------------------------------------


class Acceptor:
    """A TCP listener that accepts and closes connections in a thread, so its queue never fills."""

    def __init__(self, addr: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, 0))
        self.sock.listen(4096)
        self.sock.settimeout(0.1)
        self.addr = addr
        self.port: int = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="acceptor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.close()

    def __enter__(self) -> Acceptor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


class ClientLoop:
    """Connects from ``src`` to ``dst:port`` in a loop (one at a time, 1 s timeout) until stopped.

    Each connection is closed with RST, so source ports are never held in TIME_WAIT. A short
    pause between attempts hands the interpreter to the accepting thread.
    """

    def __init__(
        self,
        src: str,
        dst: str,
        port: int,
        timeout: float = 1.0,
        pause: float = 0.0005,
        max_attempts: int = 100_000,
    ) -> None:
        self.src, self.dst, self.port = src, dst, port
        self.timeout, self.pause, self.max_attempts = timeout, pause, max_attempts
        self.ok = 0
        self.failures: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="client-loop", daemon=True)

    def _run(self) -> None:
        for _ in range(self.max_attempts):
            if self._stop.is_set():
                return
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST_ON_CLOSE)
                s.bind((self.src, 0))
                s.settimeout(self.timeout)
                s.connect((self.dst, self.port))
                self.ok += 1
            except OSError as exc:
                self.failures.append((time.monotonic(), repr(exc)))
            finally:
                s.close()
            time.sleep(self.pause)

    def __enter__(self) -> ClientLoop:
        self._thread.start()
        wait_for(lambda: self.ok or self.failures, 5, "the first client connection")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 5)
        assert not self._thread.is_alive(), "client thread did not stop"

    def assert_clean(self, min_ok: int = 20) -> None:
        assert not self.failures, (
            f"{len(self.failures)} of {self.ok + len(self.failures)} connections from "
            f"{self.src} failed: {self.failures[:3]}"
        )
        assert self.ok >= min_ok, f"only {self.ok} connections were made"
