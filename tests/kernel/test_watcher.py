"""The file watcher end to end: real files, the real daemon loop, real nftables, real traffic.

Each field case (``/work/shared/cases``) is reproduced step by step, with ``allow.txt`` mapped
onto the configured sources file. Kernel writes are counted by wrapping the real backend; the
live set is polled from a second libnftables context while the steps run.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from nftwl import ctl, daemon
from nftwl.model import PortRange, Proto
from nftwl.nftables_backend import NftablesBackend
from nftwl.state import load_status
from tests.kernel.helpers import add_lo_addresses, nft, try_connect, write_config
from tests.kernel.watch_helpers import (
    Acceptor,
    ClientLoop,
    DaemonHandle,
    LivePoller,
    covers,
    lines,
    nets,
    replace_atomically,
    running_daemon,
    wait_for,
    write_text,
)

PROTECTED = "127.0.0.1"
ALLOWED = "127.0.0.2"
UNLISTED = "127.0.0.3"


def make_config(
    tmp_path: Path,
    sources: Path,
    ports: Path,
    allow_empty: bool = False,
    settle_seconds: float = 0.3,
) -> Path:
    """A config in ``tmp_path`` (outside the watched directories) with a fast debounce."""
    return write_config(
        tmp_path / "nftwl.toml",
        {"default": {"sources": sources, "ports": ports, "allow_empty": allow_empty}},
        state_dir=tmp_path / "state",
        debounce_ms=100,
        settle_seconds=settle_seconds,
    )


def whitelist_status(d: DaemonHandle) -> dict[str, Any]:
    status = load_status(d.state_dir)
    assert status is not None, "no status.json written"
    wl: dict[str, Any] = status["whitelists"]["default"]
    return wl


def ctl_status(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``nftwl-ctl --config CONFIG status``: exit code and output."""
    capsys.readouterr()
    rc = ctl.main(["--config", str(config), "status"])
    return rc, capsys.readouterr().out


class TestHarness:
    def test_backends_share_one_libnftables_lock(self) -> None:
        """Backends in one process serialise on one lock: the live-set poller reads while the
        daemon writes, and libnftables 1.0.6 aborts on concurrent calls even across contexts."""
        assert NftablesBackend("a")._lock is NftablesBackend("b")._lock

    def test_unlisted_client_is_dropped(self, tmp_path: Path) -> None:
        """The guard these tests rely on passes a listed loopback client, drops an unlisted one."""
        d_ = tmp_path / "d"
        d_.mkdir()
        with Acceptor(PROTECTED) as srv:
            write_text(d_ / "allow.txt", lines(ALLOWED))
            write_text(d_ / "ports.txt", lines(f"{srv.port}/tcp"))
            with running_daemon(make_config(tmp_path, d_ / "allow.txt", d_ / "ports.txt")):
                assert try_connect(ALLOWED, PROTECTED, srv.port) == "ok"
                assert try_connect(UNLISTED, PROTECTED, srv.port) == "timeout"
                with ClientLoop(UNLISTED, PROTECTED, srv.port, timeout=0.2) as client:
                    wait_for(lambda: client.failures, 2, "a failed connection")
                with pytest.raises(AssertionError, match="failed"):
                    client.assert_clean(min_ok=0)


class TestFC01ConfigMap:
    def test_fc01_configmap_symlink_swap(self, tmp_path: Path) -> None:
        """A ConfigMap ``..data`` swap is one write; removing the old directory is none."""
        m = tmp_path / "m"
        old = m / "..2026_01_01_00_00_00.1"
        old.mkdir(parents=True)
        write_text(old / "allow.txt", "192.0.2.10\n")
        os.symlink("..2026_01_01_00_00_00.1", m / "..data")
        os.symlink("..data/allow.txt", m / "allow.txt")
        (tmp_path / "p").mkdir()
        write_text(tmp_path / "p" / "ports.txt", "8443/tcp\n")
        config = make_config(tmp_path, m / "allow.txt", tmp_path / "p" / "ports.txt")

        with running_daemon(config) as d, LivePoller(d.settings.table, ["192.0.2.10"]) as poll:
            assert set(d.live().v4) == nets("192.0.2.10")
            before = d.writes
            new = m / "..2026_01_01_00_05_00.2"
            new.mkdir()
            write_text(new / "allow.txt", "192.0.2.10\n198.51.100.0/24\n")
            os.symlink("..2026_01_01_00_05_00.2", m / "..data_tmp")
            os.rename(m / "..data_tmp", m / "..data")  # mv -T
            d.wait_live(
                lambda c: set(c.v4) == nets("192.0.2.10", "198.51.100.0/24"),
                3,
                "the new ConfigMap version to be live",
            )
            d.quiesce()
            assert d.writes - before == 1, d.backend.writes[before:]

            shutil.rmtree(old)
            d.quiesce()
            assert d.writes - before == 1, d.backend.writes[before:]
            assert set(d.live().v4) == nets("192.0.2.10", "198.51.100.0/24")
        poll.assert_clean()


class TestFC02RenameOver:
    def test_fc02_rename_over_watched_file(self, tmp_path: Path) -> None:
        """Both renames over the watched file apply; 192.0.2.10 stays allowed throughout."""
        d_ = tmp_path / "d"
        d_.mkdir()
        allow = d_ / "allow.txt"
        write_text(allow, "192.0.2.10\n")
        write_text(d_ / "ports.txt", "8443/tcp\n")
        config = make_config(tmp_path, allow, d_ / "ports.txt")

        with running_daemon(config) as d, LivePoller(d.settings.table, ["192.0.2.10"]) as poll:
            write_text(d_ / ".new", "192.0.2.10\n192.0.2.11\n")
            os.rename(d_ / ".new", allow)
            d.wait_live(
                lambda c: set(c.v4) == nets("192.0.2.10", "192.0.2.11"), 3, "the first edit"
            )
            write_text(d_ / ".new", "192.0.2.10\n192.0.2.12\n")
            os.rename(d_ / ".new", allow)
            d.wait_live(
                lambda c: set(c.v4) == nets("192.0.2.10", "192.0.2.12"), 3, "the second edit"
            )
            d.quiesce()
            assert set(d.live().v4) == nets("192.0.2.10", "192.0.2.12")
        poll.assert_clean()


class TestFC04TruncateAndVimSave:
    @staticmethod
    def run_sequences(allow: Path) -> None:
        """The two sequences of FC-04, step by step."""
        # : > allow.txt; sleep 0.3; printf '192.0.2.10\n' >> allow.txt
        open(allow, "w").close()
        time.sleep(0.3)
        with open(allow, "a", encoding="utf-8") as fh:
            fh.write("192.0.2.10\n")
        # mv allow.txt allow.txt~; sleep 0.3; printf '192.0.2.10\n' > allow.txt; rm allow.txt~
        backup = allow.with_name(allow.name + "~")
        os.rename(allow, backup)
        time.sleep(0.3)
        write_text(allow, "192.0.2.10\n")
        backup.unlink()

    @staticmethod
    def setup_files(tmp_path: Path, port: int) -> tuple[Path, Path]:
        d_ = tmp_path / "d"
        d_.mkdir()
        write_text(d_ / "allow.txt", "192.0.2.10\n198.51.100.0/24\n")
        write_text(d_ / "ports.txt", f"{port}/tcp\n")
        return d_ / "allow.txt", d_ / "ports.txt"

    def test_fc04_truncate_and_vim_save(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A truncate-then-write and a vim save never drop 192.0.2.10; an emptied file is held."""
        add_lo_addresses("192.0.2.10/32")
        with Acceptor(PROTECTED) as srv:
            allow, ports = self.setup_files(tmp_path, srv.port)
            config = make_config(tmp_path, allow, ports, allow_empty=False, settle_seconds=0.3)
            with (
                running_daemon(config) as d,
                LivePoller(d.settings.table, ["192.0.2.10"]) as poll,
                ClientLoop("192.0.2.10", PROTECTED, srv.port) as client,
            ):
                before = d.writes
                self.run_sequences(allow)
                d.wait_live(lambda c: set(c.v4) == nets("192.0.2.10"), 3, "the final list")
                d.quiesce()
                assert d.writes - before == 1, d.backend.writes[before:]
                assert whitelist_status(d)["state"] == "applied"

                # allow_empty = false: an emptied file is refused, however long it stays empty.
                emptied = time.monotonic()
                open(allow, "w").close()
                wl = wait_for(
                    lambda: (s := whitelist_status(d))["state"] == "held" and s,
                    3,
                    "status to report the refused empty list",
                )
                assert "empty" in wl["reason"] and "allow_empty" in wl["reason"]
                assert wl["in_force"].startswith("1 IPv4")
                rc, out = ctl_status(config, capsys)
                assert rc == 3
                assert "default: held: source list is empty" in out
                assert "in force: 1 IPv4" in out
                time.sleep(max(0.0, emptied + 0.3 + daemon.TICK_MS / 1000 - time.monotonic()))
                d.quiesce()
                assert d.writes - before == 1, d.backend.writes[before:]
                assert set(d.live().v4) == nets("192.0.2.10")
            poll.assert_clean()
            client.assert_clean()

    def test_fc04_allow_empty_applies_only_after_settling(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With allow_empty the sequences still never drop 192.0.2.10; a file left empty is
        applied after settle_seconds, and status shows pending first."""
        settle = 1.0
        add_lo_addresses("192.0.2.10/32")
        with Acceptor(PROTECTED) as srv:
            allow, ports = self.setup_files(tmp_path, srv.port)
            config = make_config(tmp_path, allow, ports, allow_empty=True, settle_seconds=settle)
            with running_daemon(config) as d:
                with (
                    LivePoller(d.settings.table, ["192.0.2.10"]) as poll,
                    ClientLoop("192.0.2.10", PROTECTED, srv.port) as client,
                ):
                    self.run_sequences(allow)
                    d.wait_live(lambda c: set(c.v4) == nets("192.0.2.10"), 3, "the final list")
                    d.quiesce()
                poll.assert_clean()
                client.assert_clean()

                before = d.writes
                emptied = time.monotonic()
                open(allow, "w").close()
                wl = wait_for(
                    lambda: (s := whitelist_status(d))["state"] == "pending" and s,
                    settle,
                    "status to report the empty list as pending",
                )
                assert "applied if still empty after 1s" in wl["reason"]
                assert wl["in_force"].startswith("1 IPv4")
                rc, out = ctl_status(config, capsys)
                assert rc == 3
                assert "default: pending: source list is empty" in out
                assert "in force: 1 IPv4" in out
                assert covers(d.live(), "192.0.2.10"), "the last good list left before settling"

                d.wait_live(lambda c: not c.v4, settle + 3, "the empty list to be applied")
                assert d.writes - before == 1, d.backend.writes[before:]
                written_at = d.backend.writes[-1][0]
                assert written_at - emptied >= settle
                wl = wait_for(
                    lambda: (s := whitelist_status(d))["state"] == "applied" and s,
                    3,
                    "status to report the empty list as applied",
                )
                assert wl["reason"] == "source list is empty (allow_empty)"
                assert wl["in_force"].startswith("0 IPv4, 0 IPv6")
                rc, out = ctl_status(config, capsys)
                assert rc == 0
                assert "default: applied: source list is empty (allow_empty)" in out
                assert try_connect("192.0.2.10", PROTECTED, srv.port) == "timeout"


class TestFC05ConfdStageFiles:
    def test_fc05_confd_stage_files(self, tmp_path: Path) -> None:
        """A stage file renamed over the target is applied; a left-behind one is never read."""
        add_lo_addresses("192.0.2.10/32", "198.51.100.66/32")
        etc = tmp_path / "etc"
        etc.mkdir()
        allow = etc / "allow.txt"
        with Acceptor(PROTECTED) as srv:
            write_text(allow, "192.0.2.10\n")
            write_text(etc / "ports.txt", f"{srv.port}/tcp\n")
            config = make_config(tmp_path, allow, etc / "ports.txt")
            with (
                running_daemon(config) as d,
                LivePoller(d.settings.table, ["192.0.2.10"], ["198.51.100.66"]) as poll,
            ):
                before = d.writes
                write_text(etc / ".allow.txt483920175", "192.0.2.10\n203.0.113.9\n")
                os.rename(etc / ".allow.txt483920175", allow)
                d.wait_live(
                    lambda c: set(c.v4) == nets("192.0.2.10", "203.0.113.9"), 3, "the rename"
                )
                d.quiesce()
                assert d.writes - before == 1, d.backend.writes[before:]

                loads, batches = d.source.loads, d.source.relevant_batches
                write_text(etc / ".allow.txt771263540", "198.51.100.66\n")  # left behind
                d.quiesce()
                assert d.writes - before == 1, d.backend.writes[before:]
                assert (d.source.loads, d.source.relevant_batches) == (loads, batches)
                assert try_connect("198.51.100.66", PROTECTED, srv.port) == "timeout"
                assert try_connect("192.0.2.10", PROTECTED, srv.port) == "ok"

                # A later real change still reads only allow.txt, never the stale stage file.
                replace_atomically(allow, "192.0.2.10\n")
                d.wait_live(lambda c: set(c.v4) == nets("192.0.2.10"), 3, "the next change")
            poll.assert_clean()


class TestFC18ConfdPollLoop:
    @staticmethod
    def setup_files(tmp_path: Path, port: int) -> tuple[Path, Path]:
        confd = tmp_path / "confd"
        confd.mkdir()
        write_text(confd / "whiteiplist.txt", lines(ALLOWED, "192.0.2.10"))
        write_text(confd / "whiteportlist.txt", lines(f"{port}/tcp", "8443/tcp"))
        return confd / "whiteiplist.txt", confd / "whiteportlist.txt"

    def test_fc18_confd_poll_loop(self, tmp_path: Path) -> None:
        """1,000 unchanged confd renders cause zero kernel writes and zero failed connections;
        one real change is one write, live in under a second."""
        rng = random.Random(18)
        with Acceptor(PROTECTED) as srv:
            ips, ports = self.setup_files(tmp_path, srv.port)
            with running_daemon(make_config(tmp_path, ips, ports)) as d:
                content = ports.read_text(encoding="utf-8")
                before, loads = d.writes, d.source.loads
                with (
                    ClientLoop(ALLOWED, PROTECTED, srv.port) as client,
                    LivePoller(d.settings.table, [ALLOWED]) as poll,
                ):
                    for i in range(1, 1001):
                        stage = ports.with_name(f".whiteportlist.txt{rng.randrange(10**9)}")
                        with open(stage, "w", encoding="utf-8") as fh:
                            fh.write(content)
                        if i % 100 == 0:
                            os.replace(stage, ports)
                        else:
                            stage.unlink()
                        time.sleep(0.001)
                    d.quiesce()
                    assert d.writes == before, d.backend.writes[before:]
                assert d.source.loads > loads, "the renames over whiteportlist.txt went unseen"
                client.assert_clean()
                poll.assert_clean()

                changed = time.monotonic()
                replace_atomically(ports, content.replace("8443/tcp", "9443/tcp"))
                live = d.wait_live(
                    lambda c: PortRange(Proto.TCP, 9443, 9443) in c.ports,
                    1.0,
                    "the changed line to be live",
                )
                latency = time.monotonic() - changed
                assert PortRange(Proto.TCP, 8443, 8443) not in live.ports
                d.quiesce()
                assert d.writes - before == 1, d.backend.writes[before:]
                assert latency < 1.0

    def test_fc18_poll_loop_does_not_stall_a_pending_empty_list(self, tmp_path: Path) -> None:
        """Stage files written more often than the daemon's tick do not hold back an allowed
        empty list once it has settled."""
        settle = 0.5
        rng = random.Random(1818)
        ips, ports = self.setup_files(tmp_path, 8080)
        config = make_config(tmp_path, ips, ports, allow_empty=True, settle_seconds=settle)
        with running_daemon(config) as d:
            content = ips.read_text(encoding="utf-8")
            emptied = time.monotonic()
            open(ips, "w").close()
            deadline = emptied + settle + 2.0
            applied = False
            while time.monotonic() < deadline:
                stage = ips.with_name(f".whiteiplist.txt{rng.randrange(10**9)}")
                write_text(stage, content)
                stage.unlink()
                if not d.live().v4:
                    applied = True
                    break
                time.sleep(0.05)
            assert applied, (
                f"the empty list was not applied within {settle + 2.0:g}s while stage files "
                f"kept arriving; status: {whitelist_status(d)}"
            )
            assert d.backend.writes[-1][0] - emptied >= settle


class TestRestore:
    def test_deleted_table_is_restored_within_seconds(self, tmp_path: Path) -> None:
        """Another tool's "flush ruleset" or a hand "delete table" is repaired by the presence
        check (every few seconds), not only by the 5-minute resync."""
        etc = tmp_path / "etc"
        etc.mkdir()
        write_text(etc / "allow.txt", "192.0.2.10\n")
        write_text(etc / "ports.txt", "22/tcp\n")
        config = make_config(tmp_path, etc / "allow.txt", etc / "ports.txt")
        with running_daemon(config) as d:
            before = d.writes
            nft({"delete": {"table": {"family": "inet", "name": d.settings.table}}})
            d.wait_live(lambda c: set(c.v4) == nets("192.0.2.10"), 6, "the restored table")
            assert d.writes == before + 1
