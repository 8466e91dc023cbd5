"""The command-line entry points (nftwl.cli, nftwl.ctl), called as functions.

Only what needs no kernel: ``validate``, ``--help`` and ``nftwl-ctl status``. ``apply``, ``run``
and ``show`` are covered by the kernel tests.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

import pytest

import nftwl.settings as settings_module
from nftwl import cli, ctl


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No NFTWL_* variables from the caller, and no real /etc/nftwl/nftwl.toml."""
    for key in list(os.environ):
        if key.startswith("NFTWL_"):
            monkeypatch.delenv(key)
    monkeypatch.setattr(settings_module, "DEFAULT_CONFIG", tmp_path / "etc-absent" / "nftwl.toml")


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


GOOD_SOURCES = "# allowed\n192.0.2.10\n198.51.100.0/24\n2001:db8::/48\n"
GOOD_PORTS = "22/tcp\n8000-8080\n"


class TestValidateFiles:
    def test_good_files_exit_zero_with_a_summary(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Valid files exit 0, print a per-file summary on stdout and nothing on stderr."""
        src = write(tmp_path / "whiteiplist.txt", GOOD_SOURCES)
        ports = write(tmp_path / "whiteportlist.txt", GOOD_PORTS)
        assert cli.main(["validate", str(src), str(ports)]) == 0
        out, err = capsys.readouterr()
        assert err == ""
        assert out.splitlines() == [
            f"{src}: sources, 3 entries, 2 IPv4 + 1 IPv6 blocks after collapsing: OK",
            f"{ports}: ports, 2 entries, 3 port ranges: OK",
        ]

    def test_bad_lines_exit_one_with_file_and_line_on_stderr(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Each bad line is printed on stderr as FILE:LINE with the reason; exit code 1."""
        src = write(tmp_path / "allow.txt", "192.0.2.1/24\n198.51.100.0/24\nexample.com\n")
        assert cli.main(["validate", str(src)]) == 1
        out, err = capsys.readouterr()
        assert err.splitlines() == [
            f"{src}:1: '192.0.2.1/24': host bits set; did you mean 192.0.2.0/24? "
            "(or the single address 192.0.2.1)",
            f"{src}:3: 'example.com': not an IP address, network or range "
            "(host names are never resolved)",
        ]
        assert (
            f"{src}: sources, 3 entries, 1 IPv4 + 0 IPv6 blocks after collapsing: 2 error(s)" in out
        )

    def test_fc12_port_file_errors(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """FC-12: the case's port list fails validation with its three line-numbered errors."""
        ports = write(
            tmp_path / "ports.txt",
            "443\n8000-8080/tcp\n3478:3481\n49152-65535/udp\n9000-8000\n70000\n0\n",
        )
        assert cli.main(["validate", str(ports)]) == 1
        err = capsys.readouterr().err
        assert [line.split(": ", 1)[0] for line in err.splitlines()] == [
            f"{ports}:5",
            f"{ports}:6",
            f"{ports}:7",
        ]

    def test_one_bad_file_among_good_ones_fails(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The exit code is 1 if any file has an error, and every file is still reported."""
        good = write(tmp_path / "a.txt", GOOD_SOURCES)
        bad = write(tmp_path / "b.txt", "300.1.1.1\n")
        assert cli.main(["validate", str(good), str(bad)]) == 1
        out = capsys.readouterr().out
        assert f"{good}: sources" in out and ": OK" in out
        assert f"{bad}: sources, 1 entries" in out

    def test_notices_are_printed_but_do_not_fail(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Merged and IPv4-mapped entries are notices on stdout; the file still validates."""
        src = write(tmp_path / "allow.txt", "192.0.2.0/24\n192.0.2.1\n::ffff:198.51.100.7\n")
        assert cli.main(["validate", str(src)]) == 0
        out, err = capsys.readouterr()
        assert err == ""
        mapped = "IPv4-mapped address, applied as 198.51.100.7/32"
        assert f"notice: {src}:3: '::ffff:198.51.100.7': {mapped}" in out
        assert f"notice: {src}: 1 duplicate, overlapping or adjacent entries merged" in out

    def test_quiet_prints_errors_only(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """-q suppresses notices and summaries but not errors."""
        good = write(tmp_path / "a.txt", "192.0.2.0/24\n192.0.2.1\n")
        bad = write(tmp_path / "b.txt", "nope\n")
        assert cli.main(["validate", "-q", str(good)]) == 0
        assert capsys.readouterr() == ("", "")
        assert cli.main(["validate", "--quiet", str(bad)]) == 1
        out, err = capsys.readouterr()
        assert out == ""
        assert err.startswith(f"{bad}:1: 'nope': ")

    def test_missing_file_cannot_be_read(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A file that does not exist is reported on stderr and fails validation."""
        missing = tmp_path / "nope.txt"
        assert cli.main(["validate", str(missing)]) == 1
        assert capsys.readouterr().err.startswith(f"{missing}: cannot read: ")

    def test_non_utf8_file_cannot_be_read(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A file that is not UTF-8 text is refused with the offending byte position."""
        latin = write(tmp_path / "allow.txt", b"192.0.2.1 # caf\xe9\n")
        assert cli.main(["validate", str(latin)]) == 1
        assert "not UTF-8 text (byte 15)" in capsys.readouterr().err

    def test_bom_and_crlf_files_validate(self, tmp_path: Path) -> None:
        """A file saved by a Windows editor (BOM, CRLF) validates cleanly."""
        src = write(tmp_path / "allow.txt", "\ufeff192.0.2.1\r\n# c\r\n2001:db8::1\r\n".encode())
        assert cli.main(["validate", "-q", str(src)]) == 0


class TestValidateKindDetection:
    @pytest.mark.parametrize(
        ("name", "kind"),
        [
            ("whiteportlist.txt", "ports"),
            ("ports.txt", "ports"),
            ("WEB-PORTS.conf", "ports"),
            ("whiteiplist.txt", "sources"),
            ("allow.txt", "sources"),
            ("sources", "sources"),
        ],
    )
    def test_kind_from_file_name(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, kind: str
    ) -> None:
        """A file whose name contains 'port' is a port list; any other is a source list."""
        f = write(tmp_path / name, "22\n")
        code = cli.main(["validate", str(f)])
        out = capsys.readouterr().out
        assert f"{f}: {kind}, 1 entries" in out
        # "22" is a valid port but not a valid source address
        assert code == (0 if kind == "ports" else 1)

    def test_ports_flag_forces_port_parsing(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--ports reads every file as a port list whatever its name."""
        f = write(tmp_path / "allow.txt", "22/tcp\n443\n")
        assert cli.main(["validate", "--ports", str(f)]) == 0
        assert f"{f}: ports, 2 entries, 3 port ranges: OK" in capsys.readouterr().out

    def test_sources_flag_forces_source_parsing(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--sources reads every file as a source list, even one named like a port list."""
        f = write(tmp_path / "ports-of-call.txt", "192.0.2.1\n")
        assert cli.main(["validate", "--sources", str(f)]) == 0
        assert f"{f}: sources, 1 entries" in capsys.readouterr().out

    def test_ports_and_sources_are_mutually_exclusive(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--ports together with --sources is a usage error (exit 2)."""
        with pytest.raises(SystemExit) as exc:
            cli.main(["validate", "--ports", "--sources", "x"])
        assert exc.value.code == 2
        assert "not allowed with argument" in capsys.readouterr().err


class TestValidateConfig:
    def _config(self, tmp_path: Path, sources: str, ports: str) -> Path:
        write(tmp_path / "conf" / "lists" / "allow.txt", sources)
        write(tmp_path / "conf" / "lists" / "allow-ports.txt", ports)
        return write(
            tmp_path / "conf" / "nftwl.toml",
            '[whitelists.web]\nsources = "lists/allow.txt"\nports = "lists/allow-ports.txt"\n',
        )

    def test_config_checks_the_configured_files(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With --config and no files, the files the config names are checked, by their role."""
        cfg = self._config(tmp_path, GOOD_SOURCES, GOOD_PORTS)
        assert cli.main(["validate", "--config", str(cfg)]) == 0
        out = capsys.readouterr().out
        lists = tmp_path / "conf" / "lists"
        assert f"{lists / 'allow.txt'}: sources, 3 entries" in out
        assert f"{lists / 'allow-ports.txt'}: ports, 2 entries" in out

    def test_config_with_bad_list_fails(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A bad line in a configured file fails with its absolute path and line number."""
        cfg = self._config(tmp_path, GOOD_SOURCES, "22\nssh\n")
        assert cli.main(["validate", "--config", str(cfg)]) == 1
        assert capsys.readouterr().err.startswith(
            f"{tmp_path / 'conf' / 'lists' / 'allow-ports.txt'}:2: 'ssh': "
        )

    def test_config_plus_files_checks_both(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Files given with --config are checked in addition to the configured ones."""
        cfg = self._config(tmp_path, GOOD_SOURCES, GOOD_PORTS)
        extra = write(tmp_path / "extra.txt", "bad\n")
        assert cli.main(["validate", "--config", str(cfg), str(extra)]) == 1
        out = capsys.readouterr().out
        assert len(out.splitlines()) == 3

    def test_no_arguments_uses_the_default_config(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """validate without files or --config checks the files of the default config."""
        cfg = self._config(tmp_path, GOOD_SOURCES, GOOD_PORTS)
        monkeypatch.setenv("NFTWL_CONFIG", str(cfg))
        assert cli.main(["validate"]) == 0
        assert "allow-ports.txt: ports" in capsys.readouterr().out

    def test_invalid_config_exits_two(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A config error is exit code 2 with the file and key on stderr."""
        cfg = write(tmp_path / "nftwl.toml", 'tabel = "x"\n')
        assert cli.main(["validate", "--config", str(cfg)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"nftwl: {cfg}: tabel: unknown key")

    def test_missing_config_exits_two(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A --config path that does not exist is exit code 2, not a silent default."""
        missing = tmp_path / "nope.toml"
        assert cli.main(["validate", "--config", str(missing)]) == 2
        assert f"nftwl: {missing}: config file not found" in capsys.readouterr().err

    def test_configured_file_missing_fails(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A configured list that does not exist is reported and fails validation."""
        cfg = write(tmp_path / "nftwl.toml", "")
        assert cli.main(["validate", "--config", str(cfg)]) == 1
        err = capsys.readouterr().err
        assert f"{tmp_path / 'whiteiplist.txt'}: cannot read" in err
        assert f"{tmp_path / 'whiteportlist.txt'}: cannot read" in err


class TestHelp:
    @pytest.mark.parametrize(
        ("argv", "usage"),
        [
            (["--help"], "usage: nftwl "),
            (["run", "--help"], "usage: nftwl run"),
            (["apply", "--help"], "usage: nftwl apply"),
            (["validate", "--help"], "usage: nftwl validate"),
        ],
    )
    def test_nftwl_help(
        self, argv: list[str], usage: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--help on nftwl and each subcommand prints usage and exits 0."""
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 0
        assert capsys.readouterr().out.startswith(usage)

    def test_top_level_help_explains_exit_codes(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The top-level help lists the subcommands and documents the exit codes."""
        with pytest.raises(SystemExit):
            cli.main(["--help"])
        out = capsys.readouterr().out
        for word in ("run", "apply", "validate", "exit codes", "nft delete table inet"):
            assert word in out

    @pytest.mark.parametrize(
        ("argv", "usage"),
        [
            (["--help"], "usage: nftwl-ctl "),
            (["show", "--help"], "usage: nftwl-ctl show"),
            (["status", "--help"], "usage: nftwl-ctl status"),
        ],
    )
    def test_ctl_help(
        self, argv: list[str], usage: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--help on nftwl-ctl and each subcommand prints usage and exits 0."""
        with pytest.raises(SystemExit) as exc:
            ctl.main(argv)
        assert exc.value.code == 0
        assert capsys.readouterr().out.startswith(usage)

    @pytest.mark.parametrize("argv", [[], ["frobnicate"], ["apply", "--bogus"]])
    def test_usage_errors_exit_two(
        self, argv: list[str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A missing or unknown command or option is a usage error (exit 2)."""
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2
        assert "usage: nftwl" in capsys.readouterr().err


class TestCtlStatus:
    def _setup(self, tmp_path: Path, status: dict[str, Any] | None) -> Path:
        state = tmp_path / "state"
        state.mkdir()
        if status is not None:
            (state / "status.json").write_text(json.dumps(status))
        return write(tmp_path / "nftwl.toml", f'state_dir = "{state}"\n')

    HEALTHY: ClassVar[dict[str, Any]] = {
        "pid": 4242,
        "table": "nftwl",
        "backend": "nftables",
        "kernel_writes": 3,
        "last_error": None,
        "last_change": {"at": "2026-12-03T10:00:00Z", "ms": 4.2, "summary": "web_v4_hosts +1 -0"},
        "updated": "2026-12-03T10:00:01Z",
        "whitelists": {
            "web": {
                "state": "applied",
                "reason": "",
                "problems": [],
                "in_force": "2 IPv4, 1 IPv6 blocks, 3 port ranges",
            }
        },
    }

    def test_healthy_status(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A status with every whitelist applied and no error prints it and exits 0."""
        cfg = self._setup(tmp_path, self.HEALTHY)
        assert ctl.main(["--config", str(cfg), "status"]) == 0
        out = capsys.readouterr().out
        assert "table inet nftwl  updated 2026-12-03T10:00:01Z  by pid 4242" in out
        assert "last change 2026-12-03T10:00:00Z (4.2 ms): web_v4_hosts +1 -0" in out
        assert "web: applied" in out
        assert "in force: 2 IPv4, 1 IPv6 blocks, 3 port ranges" in out
        assert "last error" not in out

    def test_held_whitelist_exits_three_with_reason_and_problems(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A held whitelist makes status exit 3 and shows why, with each problem's file:line."""
        status = json.loads(json.dumps(self.HEALTHY))
        status["whitelists"]["web"] = {
            "state": "held",
            "reason": "1 invalid line(s); update refused (invalid_input = strict)",
            "problems": ["/etc/nftwl/allow.txt:3: '192.0.2.1/24': host bits set"],
            "in_force": "1 IPv4, 0 IPv6 blocks, 1 port ranges",
        }
        cfg = self._setup(tmp_path, status)
        assert ctl.main(["--config", str(cfg), "status"]) == 3
        out = capsys.readouterr().out
        assert "web: held: 1 invalid line(s); update refused (invalid_input = strict)" in out
        assert "  /etc/nftwl/allow.txt:3: '192.0.2.1/24': host bits set" in out
        assert "in force: 1 IPv4, 0 IPv6 blocks, 1 port ranges" in out

    def test_last_error_exits_three(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """FC-09: a refused transaction is visible in status, which then exits 3."""
        status = dict(self.HEALTHY, last_error="transaction refused by the kernel: No such file")
        cfg = self._setup(tmp_path, status)
        assert ctl.main(["--config", str(cfg), "status"]) == 3
        assert (
            "last error: transaction refused by the kernel: No such file" in capsys.readouterr().out
        )

    def test_json_output_is_the_status_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """status --json prints the status file's content as JSON."""
        cfg = self._setup(tmp_path, self.HEALTHY)
        assert ctl.main(["--config", str(cfg), "status", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == self.HEALTHY

    def test_missing_status_exits_one(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without a status file (nftwl never ran) status says so and exits 1."""
        cfg = self._setup(tmp_path, None)
        assert ctl.main(["--config", str(cfg), "status"]) == 1
        assert "no status in" in capsys.readouterr().err

    def test_bad_config_exits_one_with_message(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A config error is reported on stderr by nftwl-ctl, naming file and key."""
        cfg = write(tmp_path / "nftwl.toml", "chain_priority = 9999\n")
        assert ctl.main(["--config", str(cfg), "status"]) == 1
        assert capsys.readouterr().err.startswith(f"nftwl-ctl: {cfg}: chain_priority: ")
