"""Deciding what each whitelist holds and applying it (nftwl.reconciler), against the fake."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nftwl.errors import TransactionError
from nftwl.fake import FakeBackend
from nftwl.model import Action, IPv4Network, PortRange, Proto, WhitelistContent
from nftwl.parsing import MAX_ERRORS, parse_ports, parse_sources
from nftwl.reconciler import Reconciler
from nftwl.ruleset import TableState, content_of
from nftwl.settings import Settings, WhitelistSettings
from nftwl.sources.base import LoadResult
from nftwl.sources.files import load_files
from nftwl.state import load_snapshot
from nftwl.transaction import Transaction

GOOD = ("192.0.2.10\n198.51.100.0/24\n2001:db8::/48\n", "22/tcp\n443\n")
GOOD_CONTENT = WhitelistContent.from_json(
    {
        "v4": ["192.0.2.10", "198.51.100.0/24"],
        "v6": ["2001:db8::/48"],
        "ports": ["22/tcp", "443/tcp", "443/udp"],
    }
)
FC10 = "192.0.2.1/24\n198.51.100.0/24\n2001:db8::1/32\n"


@pytest.fixture(autouse=True)
def _no_nftwl_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read NFTWL_* from the environment; tests must not inherit any."""
    for key in list(os.environ):
        if key.startswith("NFTWL_"):
            monkeypatch.delenv(key)


def result(sources: str, ports: str) -> LoadResult:
    """A LoadResult as the file source would build it from the two files' text."""
    s, p = parse_sources(sources, "allow.txt"), parse_ports(ports, "ports.txt")
    return LoadResult(
        content=WhitelistContent.build(s.v4, s.v6, p.ports),
        errors=s.errors + p.errors,
        notices=s.notices + p.notices,
    )


class ScriptedSource:
    """A source whose next load() returns whatever the test set last."""

    def __init__(self, **results: LoadResult) -> None:
        self.results = results
        self.loads = 0

    def load(self) -> dict[str, LoadResult]:
        self.loads += 1
        return copy.deepcopy(self.results)

    def changes(self, stop: threading.Event, tick_ms: int) -> Iterator[bool]:
        return iter(())


@dataclass
class CountingFake(FakeBackend):
    """The fake, counting how often the kernel is read; ``refuse`` makes every apply fail."""

    reads: int = 0
    refuse: str | None = None

    def read(self) -> TableState | None:
        self.reads += 1
        return super().read()

    def apply(self, tx: Transaction) -> None:
        if tx and self.refuse is not None:
            self.fail_next = self.refuse
        super().apply(tx)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_settings(tmp_path: Path, **kw: Any) -> Settings:
    """Settings with state in tmp_path; allow_empty/action apply to each whitelist in names."""
    wl = {k: kw.pop(k) for k in ("allow_empty", "action") if k in kw}
    names = kw.pop("names", ["default"])
    return Settings(
        state_dir=tmp_path / "state",
        whitelists={n: WhitelistSettings(**wl) for n in names},
        **kw,
    )


def live_content(fake: FakeBackend, name: str = "default") -> WhitelistContent:
    live = fake.read()
    assert live is not None
    return content_of(live, name)


def status_file(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "state" / "status.json").read_text())


@pytest.fixture
def fake() -> CountingFake:
    return CountingFake()


class TestApplying:
    def test_first_reconcile_applies_the_input(self, tmp_path: Path, fake: CountingFake) -> None:
        """A valid list is applied in one write, and the kernel then holds exactly its content."""
        rec = Reconciler(make_settings(tmp_path), fake, ScriptedSource(default=result(*GOOD)))
        outcome = rec.reconcile()
        assert outcome.ok and outcome.wrote
        assert outcome.error is None
        assert fake.writes == 1
        assert live_content(fake) == GOOD_CONTENT
        assert outcome.statuses["default"].state == "applied"
        assert outcome.statuses["default"].in_force == "2 IPv4, 1 IPv6 blocks, 3 port ranges"

    def test_a_change_is_applied_as_one_more_write(
        self, tmp_path: Path, fake: CountingFake
    ) -> None:
        """Changed input leads to exactly one further transaction with the new content."""
        source = ScriptedSource(default=result(*GOOD))
        rec = Reconciler(make_settings(tmp_path), fake, source)
        rec.reconcile()
        source.results["default"] = result("203.0.113.9\n", GOOD[1])
        outcome = rec.reconcile()
        assert outcome.wrote
        assert "default_v4_hosts" in outcome.summary
        assert fake.writes == 2
        assert live_content(fake).v4 == (IPv4Network("203.0.113.9/32"),)

    def test_removing_sources_and_ports_together_loosens_first(
        self, tmp_path: Path, fake: CountingFake
    ) -> None:
        """Dropping sources and ports in one update goes as a loosening bridge, then the rest:
        one batch could briefly drop a removed source on a port that is being unprotected."""
        source = ScriptedSource(default=result(*GOOD))
        rec = Reconciler(make_settings(tmp_path), fake, source)
        rec.reconcile()
        source.results["default"] = result("203.0.113.9\n", "22/tcp\n")
        outcome = rec.reconcile()
        assert fake.writes == 3
        assert outcome.summary.startswith("bridge")
        assert live_content(fake).v4 == (IPv4Network("203.0.113.9/32"),)
        assert [str(p) for p in live_content(fake).ports] == ["22/tcp"]

    def test_action_is_applied(self, tmp_path: Path, fake: CountingFake) -> None:
        """The whitelist's configured action ends up in its guard rules."""
        settings = make_settings(tmp_path, action=Action.REJECT)
        Reconciler(settings, fake, ScriptedSource(default=result(*GOOD))).reconcile()
        assert fake.read().rules[1:] == (  # type: ignore[union-attr]
            "nftwl/1 default ipv4 reject tcp-reset",
            "nftwl/1 default ipv4 reject",
            "nftwl/1 default ipv6 reject tcp-reset",
            "nftwl/1 default ipv6 reject",
        )


class TestInvalidInput:
    def test_fc10_strict_holds_last_good_on_one_bad_line(
        self, tmp_path: Path, fake: CountingFake
    ) -> None:
        """FC-10: strict mode refuses the whole update; the kernel keeps the last good state."""
        source = ScriptedSource(default=result(*GOOD))
        rec = Reconciler(make_settings(tmp_path), fake, source)
        rec.reconcile()
        before, writes = fake.read(), fake.writes
        source.results["default"] = result(FC10, "22/tcp\n")
        outcome = rec.reconcile()
        st = outcome.statuses["default"]
        assert st.state == "held"
        assert "2 invalid line(s); update refused (invalid_input = strict)" in st.reason
        assert st.problems == [
            "allow.txt:1: '192.0.2.1/24': host bits set; did you mean 192.0.2.0/24? "
            "(or the single address 192.0.2.1)",
            "allow.txt:3: '2001:db8::1/32': host bits set; did you mean 2001:db8::/32? "
            "(or the single address 2001:db8::1)",
        ]
        assert st.in_force == GOOD_CONTENT.summary()
        assert not outcome.ok and not outcome.wrote
        assert fake.writes == writes
        assert fake.read() == before

    def test_strict_bad_port_line_holds_too(self, tmp_path: Path, fake: CountingFake) -> None:
        """A bad line in the port file holds the whitelist just like a bad source line."""
        source = ScriptedSource(default=result(*GOOD))
        rec = Reconciler(make_settings(tmp_path), fake, source)
        rec.reconcile()
        source.results["default"] = result(GOOD[0], "22/tcp\n70000\n")
        outcome = rec.reconcile(force=True)
        assert outcome.statuses["default"].state == "held"
        assert outcome.statuses["default"].problems == [
            "ports.txt:2: '70000': port 70000 out of range 1-65535"
        ]
        assert live_content(fake) == GOOD_CONTENT

    def test_strict_bad_input_without_any_good_version(
        self, tmp_path: Path, fake: CountingFake
    ) -> None:
        """With no good version ever seen, bad input enforces nothing for it, and says so."""
        rec = Reconciler(make_settings(tmp_path), fake, ScriptedSource(default=result(FC10, "22")))
        outcome = rec.reconcile()
        st = outcome.statuses["default"]
        assert st.state == "held"
        assert "no earlier good version, nothing enforced for it" in st.reason
        assert st.in_force == ""
        live = fake.read()
        assert live is None or not any(n.startswith("default_") for n in live.sets)

    def test_lenient_applies_the_valid_lines(self, tmp_path: Path, fake: CountingFake) -> None:
        """Lenient mode applies the good lines and reports the bad ones with file and line."""
        settings = make_settings(tmp_path, invalid_input="lenient")
        rec = Reconciler(settings, fake, ScriptedSource(default=result(FC10, "22/tcp\n")))
        outcome = rec.reconcile()
        st = outcome.statuses["default"]
        assert st.state == "applied"
        assert st.reason == "2 invalid line(s) skipped (invalid_input = lenient)"
        assert [p.split(":")[:2] for p in st.problems] == [["allow.txt", "1"], ["allow.txt", "3"]]
        assert live_content(fake) == WhitelistContent.build(
            v4=[IPv4Network("198.51.100.0/24")], ports=[PortRange(Proto.TCP, 22, 22)]
        )
        assert outcome.wrote

    def test_one_bad_whitelist_does_not_hold_another(
        self, tmp_path: Path, fake: CountingFake
    ) -> None:
        """Whitelists are decided independently: a bad one is held, a good one is applied."""
        source = ScriptedSource(a=result(*GOOD), b=result(*GOOD))
        rec = Reconciler(make_settings(tmp_path, names=["a", "b"]), fake, source)
        rec.reconcile()
        source.results = {"a": result("203.0.113.1", "22/tcp"), "b": result(FC10, "22/tcp")}
        outcome = rec.reconcile()
        assert outcome.statuses["a"].state == "applied"
        assert outcome.statuses["b"].state == "held"
        assert live_content(fake, "a").v4 == (IPv4Network("203.0.113.1/32"),)
        assert live_content(fake, "b") == GOOD_CONTENT


class TestUnavailableAndEmpty:
    def test_missing_file_never_empties(self, tmp_path: Path, fake: CountingFake) -> None:
        """A missing input file is 'unavailable' and keeps the last good content in force."""
        source = ScriptedSource(default=result(*GOOD))
        rec = Reconciler(make_settings(tmp_path), fake, source)
        rec.reconcile()
        writes = fake.writes
        ports = tmp_path / "ports.txt"
        ports.write_text("22\n")
        source.results["default"] = load_files(tmp_path / "missing.txt", ports)
        outcome = rec.reconcile(force=True)
        st = outcome.statuses["default"]
        assert st.state == "held"
        assert st.reason.startswith("input unavailable: ")
        assert "missing.txt: file not found" in st.reason
        assert fake.writes == writes
        assert live_content(fake) == GOOD_CONTENT

    @pytest.mark.parametrize(
        ("sources", "ports", "what"),
        [
            ("", "22/tcp", "source list"),
            ("# all gone\n", "22", "source list"),
            (GOOD[0], "", "port list"),
        ],
    )
    def test_empty_list_is_refused_unless_allowed(
        self, tmp_path: Path, fake: CountingFake, sources: str, ports: str, what: str
    ) -> None:
        """An empty source or port list is refused (held) when allow_empty is off."""
        source = ScriptedSource(default=result(*GOOD))
        rec = Reconciler(make_settings(tmp_path), fake, source)
        rec.reconcile()
        source.results["default"] = result(sources, ports)
        outcome = rec.reconcile(force=True)
        st = outcome.statuses["default"]
        assert st.state == "held"
        assert st.reason == f"{what} is empty; refused (set allow_empty = true to allow)"
        assert live_content(fake) == GOOD_CONTENT
        assert not rec.waiting()

    def test_allowed_empty_list_applies_only_after_settling(
        self, tmp_path: Path, fake: CountingFake
    ) -> None:
        """With allow_empty, an empty list is pending until it stayed empty for settle_seconds."""
        clock = Clock()
        settings = make_settings(tmp_path, allow_empty=True, settle_seconds=2.0)
        source = ScriptedSource(default=result(*GOOD))
        rec = Reconciler(settings, fake, source, clock=clock)
        rec.reconcile()
        source.results["default"] = result("", GOOD[1])

        outcome = rec.reconcile()
        assert outcome.statuses["default"].state == "pending"
        assert "applied if still empty after 2s" in outcome.statuses["default"].reason
        assert rec.waiting()
        clock.now += 1.9
        assert rec.reconcile().statuses["default"].state == "pending"
        assert live_content(fake) == GOOD_CONTENT

        clock.now += 0.2
        outcome = rec.reconcile()
        assert outcome.statuses["default"].state == "applied"
        assert outcome.statuses["default"].reason == "source list is empty (allow_empty)"
        assert outcome.wrote
        assert live_content(fake).v4 == () and live_content(fake).v6 == ()
        assert live_content(fake).ports == GOOD_CONTENT.ports

    def test_settled_empty_list_stops_the_waiting(self, tmp_path: Path, fake: CountingFake) -> None:
        """Once the empty list is applied, nothing is waiting (the daemon stops ticking for it)."""
        clock = Clock()
        settings = make_settings(tmp_path, allow_empty=True, settle_seconds=2.0)
        source = ScriptedSource(default=result(*GOOD))
        rec = Reconciler(settings, fake, source, clock=clock)
        rec.reconcile()
        source.results["default"] = result("", GOOD[1])
        rec.reconcile()
        clock.now += 5
        assert rec.reconcile().statuses["default"].state == "applied"
        assert not rec.waiting()
        clock.now += 5
        outcome = rec.reconcile()
        assert outcome.statuses["default"].state == "applied"
        assert not outcome.wrote

    def test_refilled_list_resets_the_settle_timer(
        self, tmp_path: Path, fake: CountingFake
    ) -> None:
        """Empty, then filled again, then empty: the settle period starts over."""
        clock = Clock()
        settings = make_settings(tmp_path, allow_empty=True, settle_seconds=2.0)
        source = ScriptedSource(default=result(*GOOD))
        rec = Reconciler(settings, fake, source, clock=clock)
        rec.reconcile()
        source.results["default"] = result("", GOOD[1])
        rec.reconcile()
        clock.now += 1.5
        source.results["default"] = result(*GOOD)
        assert rec.reconcile().statuses["default"].state == "applied"
        assert not rec.waiting()
        source.results["default"] = result("", GOOD[1])
        rec.reconcile()
        clock.now += 1.5
        assert rec.reconcile().statuses["default"].state == "pending"
        assert live_content(fake) == GOOD_CONTENT

    def test_zero_settle_applies_an_allowed_empty_list_at_once(
        self, tmp_path: Path, fake: CountingFake
    ) -> None:
        """settle_seconds = 0 applies an allowed empty list on the first reconcile."""
        settings = make_settings(tmp_path, allow_empty=True, settle_seconds=0)
        rec = Reconciler(settings, fake, ScriptedSource(default=result("", "22")), clock=Clock())
        assert rec.reconcile().statuses["default"].state == "applied"
        assert live_content(fake).ports == (
            PortRange(Proto.TCP, 22, 22),
            PortRange(Proto.UDP, 22, 22),
        )


class TestNoOp:
    def test_unchanged_input_neither_reads_nor_writes_the_kernel(
        self, tmp_path: Path, fake: CountingFake
    ) -> None:
        """Reconciling unchanged input does not touch the kernel at all (FC-18's poll loop)."""
        source = ScriptedSource(default=result(*GOOD))
        rec = Reconciler(make_settings(tmp_path), fake, source)
        rec.reconcile()
        reads, writes = fake.reads, fake.writes
        for _ in range(5):
            outcome = rec.reconcile()
            assert not outcome.wrote
            assert outcome.summary == "no change"
        assert (fake.reads, fake.writes) == (reads, writes)
        assert source.loads == 6

    def test_respelled_input_is_unchanged(self, tmp_path: Path, fake: CountingFake) -> None:
        """Input that normalises to the same content (reordered, split, commented) is a no-op."""
        source = ScriptedSource(default=result(*GOOD))
        rec = Reconciler(make_settings(tmp_path), fake, source)
        rec.reconcile()
        reads, writes = fake.reads, fake.writes
        source.results["default"] = result(
            "# same\n2001:DB8::/49\n2001:db8:0:8000::/49\n198.51.100.0/25\n"
            "198.51.100.128/25\n192.0.2.10 # host\n",
            "443/udp\n443/tcp\n22/TCP\n",
        )
        rec.reconcile()
        assert (fake.reads, fake.writes) == (reads, writes)

    def test_forced_reconcile_reads_but_writes_nothing_when_in_sync(
        self, tmp_path: Path, fake: CountingFake
    ) -> None:
        """force re-reads the kernel (drift check) but writes nothing if it already agrees."""
        rec = Reconciler(make_settings(tmp_path), fake, ScriptedSource(default=result(*GOOD)))
        rec.reconcile()
        reads, writes = fake.reads, fake.writes
        outcome = rec.reconcile(force=True)
        assert fake.reads == reads + 1
        assert fake.writes == writes
        assert not outcome.wrote

    def test_forced_reconcile_repairs_drift(self, tmp_path: Path, fake: CountingFake) -> None:
        """A hand-deleted element is put back by the next forced reconcile."""
        rec = Reconciler(make_settings(tmp_path), fake, ScriptedSource(default=result(*GOOD)))
        rec.reconcile()
        nets = fake.state.sets["default_v4_nets"]  # type: ignore[union-attr]
        nets.elements = frozenset()
        assert rec.reconcile().wrote is False  # not forced: the input did not change
        assert rec.reconcile(force=True).wrote
        assert live_content(fake) == GOOD_CONTENT

    def test_status_file_not_rewritten_when_nothing_changed(
        self, tmp_path: Path, fake: CountingFake, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A no-op reconcile does not rewrite status.json or the snapshot (no disk churn)."""
        import nftwl.reconciler as reconciler_module

        saved: list[str] = []
        real_status, real_snapshot = reconciler_module.save_status, reconciler_module.save_snapshot
        monkeypatch.setattr(
            reconciler_module,
            "save_status",
            lambda *a: (saved.append("status"), real_status(*a))[1],
        )
        monkeypatch.setattr(
            reconciler_module,
            "save_snapshot",
            lambda *a: (saved.append("snapshot"), real_snapshot(*a))[1],
        )
        rec = Reconciler(make_settings(tmp_path), fake, ScriptedSource(default=result(*GOOD)))
        rec.reconcile()
        assert sorted(saved) == ["snapshot", "status"]
        saved.clear()
        rec.reconcile()
        rec.reconcile(force=True)
        assert saved == []


class TestRestart:
    def test_adopts_live_table_as_last_good(self, tmp_path: Path, fake: CountingFake) -> None:
        """A fresh reconciler with bad input keeps what the kernel already enforces."""
        Reconciler(
            make_settings(tmp_path), fake, ScriptedSource(default=result(*GOOD)), persist=False
        ).reconcile()
        before, writes = fake.read(), fake.writes
        rec = Reconciler(
            make_settings(tmp_path / "other"), fake, ScriptedSource(default=result(FC10, "22"))
        )
        outcome = rec.reconcile(force=True)
        st = outcome.statuses["default"]
        assert st.state == "held"
        assert st.in_force == GOOD_CONTENT.summary()
        assert "no earlier good version" not in st.reason
        assert fake.writes == writes
        assert fake.read() == before

    def test_snapshot_used_when_the_table_is_gone(self, tmp_path: Path) -> None:
        """After a reboot (empty kernel) with bad input, the snapshot's content is restored."""
        first = CountingFake()
        Reconciler(
            make_settings(tmp_path), first, ScriptedSource(default=result(*GOOD))
        ).reconcile()
        assert (tmp_path / "state" / "snapshot.json").exists()

        rebooted = CountingFake()
        rec = Reconciler(
            make_settings(tmp_path), rebooted, ScriptedSource(default=result(FC10, "22"))
        )
        outcome = rec.reconcile(force=True)
        assert outcome.statuses["default"].state == "held"
        assert outcome.wrote
        assert live_content(rebooted) == GOOD_CONTENT

    def test_snapshot_used_when_the_input_is_missing(self, tmp_path: Path) -> None:
        """After a reboot with the files gone, the snapshot is enforced rather than nothing."""
        Reconciler(
            make_settings(tmp_path), CountingFake(), ScriptedSource(default=result(*GOOD))
        ).reconcile()
        rebooted = CountingFake()
        gone = LoadResult(unavailable="allow.txt: file not found")
        Reconciler(make_settings(tmp_path), rebooted, ScriptedSource(default=gone)).reconcile()
        assert live_content(rebooted) == GOOD_CONTENT

    def test_snapshot_records_what_was_applied(self, tmp_path: Path, fake: CountingFake) -> None:
        """snapshot.json holds the applied content and action, readable by load_snapshot."""
        settings = make_settings(tmp_path, action=Action.REJECT)
        Reconciler(settings, fake, ScriptedSource(default=result(*GOOD))).reconcile()
        assert load_snapshot(tmp_path / "state", "nftwl") == {
            "default": (GOOD_CONTENT, Action.REJECT)
        }
        assert load_snapshot(tmp_path / "state", "othertable") == {}

    def test_persist_false_writes_no_files(self, tmp_path: Path, fake: CountingFake) -> None:
        """A reconciler with persist=False (dry run) leaves the state directory alone."""
        Reconciler(
            make_settings(tmp_path), fake, ScriptedSource(default=result(*GOOD)), persist=False
        ).reconcile()
        assert not (tmp_path / "state").exists()


class TestTransactionFailure:
    def test_one_failure_is_retried_after_rereading(
        self, tmp_path: Path, fake: CountingFake
    ) -> None:
        """A transaction refused once (live state moved) is re-planned and applied on retry."""
        rec = Reconciler(make_settings(tmp_path), fake, ScriptedSource(default=result(*GOOD)))
        fake.fail_next = "Device or resource busy"
        outcome = rec.reconcile()
        assert outcome.error is None
        assert outcome.wrote
        assert fake.fail_next is None
        assert live_content(fake) == GOOD_CONTENT

    def test_persistent_failure_keeps_previous_state(
        self, tmp_path: Path, fake: CountingFake
    ) -> None:
        """If the kernel keeps refusing, the error is reported and the old rules stay in force."""
        source = ScriptedSource(default=result(*GOOD))
        rec = Reconciler(make_settings(tmp_path), fake, source)
        rec.reconcile()
        before, writes = fake.read(), fake.writes
        snapshot = (tmp_path / "state" / "snapshot.json").read_text()

        fake.refuse = "Operation not permitted"
        source.results["default"] = result("203.0.113.1\n", "22/tcp")
        outcome = rec.reconcile()
        assert outcome.error == "transaction refused by the kernel: Operation not permitted"
        assert not outcome.ok and not outcome.wrote
        assert fake.read() == before
        assert fake.writes == writes
        status = status_file(tmp_path)
        assert status["last_error"] == outcome.error
        assert status["kernel_writes"] == 1
        assert (tmp_path / "state" / "snapshot.json").read_text() == snapshot

    def test_failed_update_is_retried_by_the_next_reconcile(
        self, tmp_path: Path, fake: CountingFake
    ) -> None:
        """A refused update is not recorded as applied: the next unforced reconcile tries again."""
        source = ScriptedSource(default=result(*GOOD))
        rec = Reconciler(make_settings(tmp_path), fake, source)
        fake.refuse = "Operation not permitted"
        assert rec.reconcile().error is not None
        assert fake.state is None
        fake.refuse = None  # the kernel recovers
        outcome = rec.reconcile()
        assert outcome.error is None and outcome.wrote
        assert live_content(fake) == GOOD_CONTENT
        assert status_file(tmp_path)["last_error"] is None


class TestStatusFile:
    def test_applied_status(self, tmp_path: Path, fake: CountingFake) -> None:
        """status.json states table, writes, error, last change and each whitelist's state."""
        Reconciler(make_settings(tmp_path), fake, ScriptedSource(default=result(*GOOD))).reconcile()
        status = status_file(tmp_path)
        assert status["table"] == "nftwl"
        assert status["kernel_writes"] == 1
        assert status["last_error"] is None
        assert isinstance(status["pid"], int)
        assert status["updated"].endswith("Z")
        assert "default_v4_nets +1 -0" in status["last_change"]["summary"]
        assert status["whitelists"] == {
            "default": {
                "state": "applied",
                "reason": "",
                "problems": [],
                "in_force": GOOD_CONTENT.summary(),
            }
        }

    def test_held_status_lists_problems(self, tmp_path: Path, fake: CountingFake) -> None:
        """A held whitelist's status names the reason and each problem as file:line."""
        source = ScriptedSource(default=result(*GOOD))
        rec = Reconciler(make_settings(tmp_path), fake, source)
        rec.reconcile()
        source.results["default"] = result(FC10, "22/tcp")
        rec.reconcile()
        wl = status_file(tmp_path)["whitelists"]["default"]
        assert wl["state"] == "held"
        assert "invalid_input = strict" in wl["reason"]
        assert [p.split(": ", 1)[0] for p in wl["problems"]] == ["allow.txt:1", "allow.txt:3"]
        assert wl["in_force"] == GOOD_CONTENT.summary()


@contextlib.contextmanager
def bridge_then_refuse(fake: FakeBackend) -> Iterator[None]:
    """Inside the block the fake applies the first transaction (the bridge) and refuses every
    later one, as a kernel would that changed under nftwl between the two steps."""
    real_apply = fake.apply
    calls = 0

    def apply(tx: Transaction) -> None:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise TransactionError("No such file or directory")
        real_apply(tx)

    fake.apply = apply  # type: ignore[method-assign]
    try:
        yield
    finally:
        fake.apply = real_apply  # type: ignore[method-assign]


class TestFailuresAndPersistence:
    def test_refused_bridge_follow_up_is_reported_and_replanned(
        self, tmp_path: Path, fake: CountingFake
    ) -> None:
        """If the kernel accepts the bridge but refuses the step after it, the status says
        failed (not applied), and the next reconcile reads the kernel again instead of taking
        unchanged input as a no-op."""
        source = ScriptedSource(default=result("192.0.2.10\n", "22/tcp\n"))
        rec = Reconciler(make_settings(tmp_path), fake, source)
        rec.reconcile()
        source.results["default"] = result("192.0.2.8/29\n", "22/tcp\n")
        with bridge_then_refuse(fake):
            outcome = rec.reconcile()
        assert outcome.error is not None
        assert outcome.statuses["default"].state == "failed"
        assert status_file(tmp_path)["whitelists"]["default"]["state"] == "failed"
        reads = fake.reads
        outcome = rec.reconcile()
        assert fake.reads > reads
        assert outcome.ok
        assert live_content(fake).v4 == (IPv4Network("192.0.2.8/29"),)

    def test_unwritable_state_dir_does_not_stop_the_kernel_update(
        self, tmp_path: Path, fake: CountingFake
    ) -> None:
        """A state dir that cannot be written (a file in its place) is logged, not fatal."""
        (tmp_path / "state").write_text("not a directory")
        rec = Reconciler(make_settings(tmp_path), fake, ScriptedSource(default=result(*GOOD)))
        outcome = rec.reconcile()
        assert outcome.ok and outcome.wrote
        assert live_content(fake) == GOOD_CONTENT

    def test_snapshot_wins_over_a_different_live_table_on_restart(
        self, tmp_path: Path, fake: CountingFake
    ) -> None:
        """On restart with broken input the snapshot (what nftwl last applied in full) is
        enforced, not a different live table (a bridge left by a crash, an old dump restored
        at boot)."""
        settings = make_settings(tmp_path)
        source = ScriptedSource(default=result(*GOOD))
        Reconciler(settings, fake, source).reconcile()
        loosened = FakeBackend.mirror(fake.read(), "nftwl")
        source.results["default"] = result("192.0.2.0/24\n203.0.113.0/24\n", "22/tcp\n")
        Reconciler(settings, loosened, source, persist=False).reconcile()  # not saved
        source.results["default"] = result("203.0.113.9/8\n", GOOD[1])  # broken input
        outcome = Reconciler(settings, loosened, source).reconcile()
        assert outcome.statuses["default"].state == "held"
        assert live_content(loosened) == GOOD_CONTENT

    def test_bridge_left_by_refusals_is_never_adopted_as_last_good(
        self, tmp_path: Path, fake: CountingFake
    ) -> None:
        """After a bridge was applied and the final step refused, broken input keeps the last
        good version: the loosened bridge (old and new sources, no ports) is not adopted."""
        source = ScriptedSource(default=result("192.0.2.10\n", "22/tcp\n"))
        rec = Reconciler(make_settings(tmp_path), fake, source)
        rec.reconcile()
        source.results["default"] = result("192.0.2.8/29\n203.0.113.5\n", "80/tcp\n")
        with bridge_then_refuse(fake):
            assert rec.reconcile().error is not None
        source.results["default"] = LoadResult(unavailable="allow.txt: file not found")
        rec.reconcile()
        live = live_content(fake)
        assert [str(p) for p in live.ports] == ["22/tcp"]
        assert live.v4 == (IPv4Network("192.0.2.10/32"),)
        snapshot = json.loads((tmp_path / "state" / "snapshot.json").read_text())
        assert snapshot["whitelists"]["default"]["ports"] == ["22/tcp"]


class TestOperatorSignals:
    def test_whitelisting_everyone_is_applied_with_a_warning(
        self, tmp_path: Path, fake: CountingFake, caplog: pytest.LogCaptureFixture
    ) -> None:
        """0.0.0.0/0 is legal but allows every IPv4 source: applied, and said out loud."""
        rec = Reconciler(
            make_settings(tmp_path), fake, ScriptedSource(default=result("0.0.0.0/0\n", "22\n"))
        )
        outcome = rec.reconcile()
        assert outcome.statuses["default"].state == "applied"
        assert "allows every source: 0.0.0.0/0" in outcome.statuses["default"].reason
        assert "allows every source" in caplog.text

    def test_status_file_caps_the_problem_list(self, tmp_path: Path, fake: CountingFake) -> None:
        """A file with thousands of bad lines does not make a status file of the same size."""
        bad = "".join(f"bad{i}\n" for i in range(5000))
        rec = Reconciler(make_settings(tmp_path), fake, ScriptedSource(default=result(bad, "22\n")))
        rec.reconcile()
        problems = status_file(tmp_path)["whitelists"]["default"]["problems"]
        assert len(problems) == 101
        # Parsing itself stops after MAX_ERRORS bad lines (and says so in one more line).
        assert problems[-1] == f"... and {MAX_ERRORS + 1 - 100} more"
