"""The operator contract of ``nftwl apply`` and ``nftwl-ctl show``, end to end in-process."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from nftwl import cli, ctl
from nftwl.model import WhitelistContent
from nftwl.nftables_backend import NftablesBackend
from nftwl.parsing import parse_ports, parse_sources
from nftwl.transaction import Transaction
from tests.kernel.helpers import (
    REAL_DATA,
    list_table,
    list_table_bytes,
    live_family,
    nft,
    write_config,
)

AWS = REAL_DATA / "cloud-aws.txt"
PORTS_TEXT = "22/tcp\n8000-8100\n"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No NFTWL_* from the caller's environment; the root logger restored afterwards
    (cli.main() reconfigures it)."""
    for key in [k for k in os.environ if k.startswith("NFTWL_")]:
        monkeypatch.delenv(key)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[Transaction]:
    """Every non-empty transaction any NftablesBackend applies during the test."""
    seen: list[Transaction] = []
    original = NftablesBackend.apply

    def counting(self: NftablesBackend, tx: Transaction) -> None:
        if tx:
            seen.append(tx)
        original(self, tx)

    monkeypatch.setattr(NftablesBackend, "apply", counting)
    return seen


def expected(sources: Path, ports_text: str = PORTS_TEXT) -> WhitelistContent:
    s = parse_sources(sources.read_text(encoding="utf-8"), str(sources))
    p = parse_ports(ports_text, "ports")
    assert not s.errors and not p.errors
    return WhitelistContent.build(s.v4, s.v6, p.ports)


def assert_kernel_holds(table: str, want: WhitelistContent, whitelist: str = "default") -> None:
    assert live_family(table, whitelist, 4) == set(want.v4)
    assert live_family(table, whitelist, 6) == set(want.v6)
    live = NftablesBackend(table).read()
    assert live is not None
    assert live.sets[f"{whitelist}_ports"].elements == frozenset(want.ports)


def aws_config(tmp_path: Path, **settings: object) -> Path:
    ports = tmp_path / "ports.txt"
    ports.write_text(PORTS_TEXT, encoding="utf-8")
    return write_config(
        tmp_path,
        {"default": {"sources": AWS, "ports": ports}},
        state_dir=tmp_path / "state",
        **settings,
    )


def small_config(tmp_path: Path, sources_text: str, **settings: object) -> tuple[Path, Path]:
    """A config whose sources file (returned too) is a small one the test may edit."""
    sources = tmp_path / "allow.txt"
    sources.write_text(sources_text, encoding="utf-8")
    ports = tmp_path / "ports.txt"
    ports.write_text(PORTS_TEXT, encoding="utf-8")
    cfg = write_config(
        tmp_path,
        {"default": {"sources": sources, "ports": ports}},
        state_dir=tmp_path / "state",
        **settings,
    )
    return cfg, sources


class TestApply:
    def test_apply_real_list_holds_exactly_the_collapsed_ranges(
        self, tmp_path: Path, writes: list[Transaction]
    ) -> None:
        """`nftwl apply` exits 0 and the kernel holds exactly the collapsed AWS ranges."""
        cfg = aws_config(tmp_path)
        assert cli.main(["apply", "--config", str(cfg)]) == 0
        assert len(writes) == 1
        s = parse_sources(AWS.read_text(encoding="utf-8"), str(AWS))
        assert live_family("nftwl", "default", 4) == set(ipaddress.collapse_addresses(s.v4))
        assert live_family("nftwl", "default", 6) == set(ipaddress.collapse_addresses(s.v6))
        assert_kernel_holds("nftwl", expected(AWS))
        assert (tmp_path / "state" / "snapshot.json").is_file()

    def test_second_apply_writes_nothing(self, tmp_path: Path, writes: list[Transaction]) -> None:
        """A second apply of the same files exits 0 and sends no transaction to the kernel."""
        cfg = aws_config(tmp_path)
        assert cli.main(["apply", "--config", str(cfg)]) == 0
        before = list_table_bytes("inet", "nftwl")
        assert len(writes) == 1
        assert cli.main(["apply", "--config", str(cfg)]) == 0
        assert writes[1:] == []
        assert list_table_bytes("inet", "nftwl") == before

    def test_second_apply_without_state_dir_writes_nothing(
        self, tmp_path: Path, writes: list[Transaction]
    ) -> None:
        """With the snapshot lost, an apply against a matching table still writes nothing."""
        cfg = aws_config(tmp_path)
        assert cli.main(["apply", "--config", str(cfg)]) == 0
        (tmp_path / "state" / "snapshot.json").unlink()
        assert cli.main(["apply", "--config", str(cfg)]) == 0
        assert len(writes) == 1

    def test_changed_file_is_applied_as_a_delta(
        self, tmp_path: Path, writes: list[Transaction]
    ) -> None:
        """Editing the sources file and applying again changes only the affected set."""
        cfg, sources = small_config(tmp_path, "192.0.2.0/24\n198.51.100.1\n2001:db8::/48\n")
        assert cli.main(["apply", "--config", str(cfg)]) == 0
        sources.write_text("192.0.2.0/24\n198.51.100.2\n2001:db8::/48\n", encoding="utf-8")
        assert cli.main(["apply", "--config", str(cfg)]) == 0
        assert len(writes) == 2
        assert set(writes[1].changes) == {"default_v4_hosts"}
        assert not writes[1].rules_rewritten
        assert_kernel_holds("nftwl", expected(sources))

    def test_strict_bad_line_exits_1_and_keeps_the_kernel(
        self, tmp_path: Path, writes: list[Transaction], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """In strict mode one bad line exits 1, names file and line, and changes nothing."""
        cfg, sources = small_config(tmp_path, "192.0.2.0/24\n2001:db8::/48\n")
        assert cli.main(["apply", "--config", str(cfg)]) == 0
        good = expected(sources)
        before = list_table_bytes("inet", "nftwl")
        capsys.readouterr()
        sources.write_text("192.0.2.0/24\n203.0.113.5\nnot-an-address\n", encoding="utf-8")
        assert cli.main(["apply", "--config", str(cfg)]) == 1
        err = capsys.readouterr().err
        assert f"{sources}:3" in err
        assert "not-an-address" in err
        assert len(writes) == 1
        assert list_table_bytes("inet", "nftwl") == before
        assert_kernel_holds("nftwl", good)

    def test_strict_bad_line_on_first_apply_exits_1(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A bad line with no earlier good version exits 1 and enforces nothing of the file."""
        cfg, sources = small_config(tmp_path, "192.0.2.0/24\n192.0.2.300\n")
        assert cli.main(["apply", "--config", str(cfg)]) == 1
        assert f"{sources}:2" in capsys.readouterr().err
        live = NftablesBackend("nftwl").read()
        assert live is None or not live.sets

    def test_lenient_bad_line_applies_the_good_ones(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """In lenient mode the good lines are applied and the bad one is still reported."""
        cfg, sources = small_config(
            tmp_path, "192.0.2.0/24\nnot-an-address\n", invalid_input="lenient"
        )
        assert cli.main(["apply", "--config", str(cfg)]) == 0
        assert f"{sources}:2" in capsys.readouterr().err
        assert live_family("nftwl", "default", 4) == {ipaddress.ip_network("192.0.2.0/24")}

    def test_missing_sources_file_exits_1_and_keeps_the_kernel(
        self, tmp_path: Path, writes: list[Transaction]
    ) -> None:
        """A sources file that disappeared is never taken as empty."""
        cfg, sources = small_config(tmp_path, "192.0.2.0/24\n")
        assert cli.main(["apply", "--config", str(cfg)]) == 0
        before = list_table_bytes("inet", "nftwl")
        sources.unlink()
        assert cli.main(["apply", "--config", str(cfg)]) == 1
        assert len(writes) == 1
        assert list_table_bytes("inet", "nftwl") == before

    def test_relative_paths_resolve_against_the_config_dir(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Relative whitelist paths in the config are read from the config's directory."""
        conf_dir = tmp_path / "etc"
        (conf_dir / "lists").mkdir(parents=True)
        (conf_dir / "lists" / "allow.txt").write_text("198.51.100.0/24\n", encoding="utf-8")
        (conf_dir / "lists" / "ports.txt").write_text("443/tcp\n", encoding="utf-8")
        cfg = write_config(
            conf_dir,
            {"default": {"sources": "lists/allow.txt", "ports": "lists/ports.txt"}},
            state_dir="state",
        )
        elsewhere = tmp_path / "cwd"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        assert cli.main(["apply", "--config", str(cfg)]) == 0
        assert live_family("nftwl", "default", 4) == {ipaddress.ip_network("198.51.100.0/24")}
        assert (conf_dir / "state" / "snapshot.json").is_file()
        assert not (elsewhere / "state").exists()

    def test_table_from_environment(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """NFTWL_TABLE selects the table nftwl writes; the default name stays untouched."""
        monkeypatch.setenv("NFTWL_TABLE", "fw2")
        cfg, sources = small_config(tmp_path, "192.0.2.0/24\n")
        assert cli.main(["apply", "--config", str(cfg)]) == 0
        assert NftablesBackend("nftwl").read() is None
        assert_kernel_holds("fw2", expected(sources))


class TestDryRun:
    def test_dry_run_on_an_empty_kernel_changes_nothing(
        self, tmp_path: Path, writes: list[Transaction], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--dry-run prints the whole transaction and neither writes the kernel nor state."""
        cfg = aws_config(tmp_path)
        assert cli.main(["apply", "--config", str(cfg), "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert "add table inet nftwl" in out
        assert "add element inet nftwl default_v4_nets" in out
        assert writes == []
        assert NftablesBackend("nftwl").read() is None
        assert not (tmp_path / "state" / "snapshot.json").exists()

    def test_dry_run_shows_only_the_delta(
        self, tmp_path: Path, writes: list[Transaction], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """After an apply, --dry-run on an edited file prints the delta and leaves it unapplied."""
        cfg, sources = small_config(tmp_path, "192.0.2.0/24\n198.51.100.1\n")
        assert cli.main(["apply", "--config", str(cfg)]) == 0
        before = list_table_bytes("inet", "nftwl")
        snapshot = (tmp_path / "state" / "snapshot.json").read_bytes()
        capsys.readouterr()
        sources.write_text("192.0.2.0/24\n198.51.100.9\n", encoding="utf-8")
        assert cli.main(["apply", "--config", str(cfg), "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert "198.51.100.9" in out and "198.51.100.1/32" in out
        assert "add table" not in out and "flush chain" not in out
        assert len(writes) == 1
        assert list_table_bytes("inet", "nftwl") == before
        assert (tmp_path / "state" / "snapshot.json").read_bytes() == snapshot

    def test_dry_run_shows_every_step_of_a_bridged_update(
        self, tmp_path: Path, writes: list[Transaction], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A host growing into a covering network is two steps; --dry-run prints both."""
        cfg, sources = small_config(tmp_path, "192.0.2.10\n")
        assert cli.main(["apply", "--config", str(cfg)]) == 0
        before = list_table_bytes("inet", "nftwl")
        capsys.readouterr()
        sources.write_text("192.0.2.8/29\n", encoding="utf-8")
        assert cli.main(["apply", "--config", str(cfg), "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert "# bridge step (loosen first)" in out
        assert "add element inet nftwl default_v4_nets { 192.0.2.8/29 }" in out
        assert "delete element inet nftwl default_v4_hosts { 192.0.2.10/32 }" in out
        assert len(writes) == 1
        assert list_table_bytes("inet", "nftwl") == before

    def test_dry_run_in_sync_says_no_change(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--dry-run against a table that already matches prints that nothing would change."""
        cfg, _ = small_config(tmp_path, "192.0.2.0/24\n")
        assert cli.main(["apply", "--config", str(cfg)]) == 0
        capsys.readouterr()
        assert cli.main(["apply", "--config", str(cfg), "--dry-run"]) == 0
        assert "# no change" in capsys.readouterr().out


class TestCtl:
    def test_show_json_matches_the_applied_lists(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`nftwl-ctl show --json` reports exactly the content that was applied."""
        cfg = aws_config(tmp_path)
        assert cli.main(["apply", "--config", str(cfg)]) == 0
        capsys.readouterr()
        assert ctl.main(["--config", str(cfg), "show", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        want = expected(AWS)
        assert out["table"] == "inet nftwl"
        assert list(out["whitelists"]) == ["default"]
        shown = out["whitelists"]["default"]
        assert {k: shown[k] for k in ("v4", "v6", "ports")} == want.to_json()
        assert shown["counts"] == {
            "ipv4": len(want.v4),
            "ipv6": len(want.v6),
            "ports": len(want.ports),
        }
        assert shown["dropped"] == {"packets": 0, "bytes": 0}

    def test_show_and_status_after_apply(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Text show names the whitelist and status reports it applied (exit 0)."""
        cfg, _ = small_config(tmp_path, "192.0.2.0/24\n")
        assert cli.main(["apply", "--config", str(cfg)]) == 0
        capsys.readouterr()
        assert ctl.main(["--config", str(cfg), "show"]) == 0
        text = capsys.readouterr().out
        assert "whitelist default: 1 IPv4, 0 IPv6 blocks" in text
        assert "192.0.2.0/24" in text
        assert ctl.main(["--config", str(cfg), "status", "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert status["table"] == "nftwl"
        assert status["last_error"] is None
        assert status["whitelists"]["default"]["state"] == "applied"

    def test_show_without_table_exits_1(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Before any apply, show says the table does not exist and exits 1."""
        cfg, _ = small_config(tmp_path, "192.0.2.0/24\n")
        assert ctl.main(["--config", str(cfg), "show", "--json"]) == 1
        assert "does not exist" in capsys.readouterr().err


class TestOwnership:
    def test_foreign_table_of_the_same_name_is_never_taken_over(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A host's own 'table inet filter' named in the config is refused, not rewritten."""
        t = {"family": "inet", "table": "filter"}
        nft(
            {"add": {"table": {"family": "inet", "name": "filter"}}},
            {
                "add": {
                    "chain": {
                        **t,
                        "name": "input",
                        "type": "filter",
                        "hook": "input",
                        "prio": 0,
                        "policy": "drop",
                    }
                }
            },
            {"add": {"set": {**t, "name": "blocklist", "type": "ipv4_addr"}}},
            {
                "add": {
                    "rule": {
                        **t,
                        "chain": "input",
                        "expr": [
                            {
                                "match": {
                                    "op": "==",
                                    "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                                    "right": 22,
                                }
                            },
                            {"accept": None},
                        ],
                    }
                }
            },
        )
        before = list_table_bytes("inet", "filter")
        cfg, _ = small_config(tmp_path, "192.0.2.10\n", table="filter")
        assert cli.main(["apply", "--config", str(cfg)]) == 1
        assert "not created by nftwl" in capsys.readouterr().err
        assert list_table_bytes("inet", "filter") == before

    def test_hand_set_drop_policy_is_repaired(self, tmp_path: Path) -> None:
        """A 'policy drop' set by hand on nftwl's chain is drift: the next apply restores accept."""
        cfg, _ = small_config(tmp_path, "192.0.2.10\n")
        assert cli.main(["apply", "--config", str(cfg)]) == 0
        chain = {"family": "inet", "table": "nftwl", "name": "input"}
        nft(
            {
                "add": {
                    "chain": {
                        **chain,
                        "type": "filter",
                        "hook": "input",
                        "prio": 0,
                        "policy": "drop",
                    }
                }
            }
        )
        assert cli.main(["apply", "--config", str(cfg)]) == 0
        listed = [i["chain"] for i in list_table("inet", "nftwl") if "chain" in i]
        assert [c["policy"] for c in listed] == ["accept"]

    def test_flushed_table_is_still_ours_and_repaired(self, tmp_path: Path) -> None:
        """'nft flush table' leaves sets and an empty chain: nftwl still owns the table and
        restores its rules and elements (it must not refuse it as foreign)."""
        cfg, _ = small_config(tmp_path, "192.0.2.10\n")
        assert cli.main(["apply", "--config", str(cfg)]) == 0
        nft({"flush": {"table": {"family": "inet", "name": "nftwl"}}})
        assert cli.main(["apply", "--config", str(cfg)]) == 0
        assert_kernel_holds("nftwl", expected(tmp_path / "allow.txt"))
        rules = [i["rule"]["comment"] for i in list_table("inet", "nftwl") if "rule" in i]
        assert rules[0] == "nftwl/1 established" and len(rules) == 3
