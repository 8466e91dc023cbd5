"""The state directory's files (nftwl.state): atomic writes, snapshot and status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nftwl.model import Action, WhitelistContent
from nftwl.state import (
    FORMAT_VERSION,
    load_snapshot,
    load_status,
    read_json,
    save_snapshot,
    save_status,
    write_atomic,
)

WEB = WhitelistContent.from_json(
    {"v4": ["192.0.2.7", "198.51.100.0/24"], "v6": ["2001:db8::/48"], "ports": ["443/tcp"]}
)
SSH = WhitelistContent.from_json({"v4": ["203.0.113.0/24"], "ports": ["22/tcp", "22/udp"]})


class TestWriteAtomic:
    def test_writes_json_and_leaves_no_temp_files(self, tmp_path: Path) -> None:
        """The target holds the JSON and is the only file in the directory afterwards."""
        target = tmp_path / "status.json"
        for i in range(3):
            write_atomic(target, {"n": i, "names": ["a", "b"]})
        assert json.loads(target.read_text()) == {"n": 2, "names": ["a", "b"]}
        assert [p.name for p in tmp_path.iterdir()] == ["status.json"]

    def test_creates_missing_directories(self, tmp_path: Path) -> None:
        """A state directory that does not exist yet is created."""
        target = tmp_path / "var" / "lib" / "nftwl" / "snapshot.json"
        write_atomic(target, {"ok": True})
        assert json.loads(target.read_text()) == {"ok": True}

    def test_failed_write_keeps_old_file_and_no_temp(self, tmp_path: Path) -> None:
        """If serialising fails midway, the old file is intact and no temp file remains."""
        target = tmp_path / "snapshot.json"
        write_atomic(target, {"version": 1})
        with pytest.raises(TypeError):
            write_atomic(target, {"version": 2, "bad": object()})
        assert json.loads(target.read_text()) == {"version": 1}
        assert [p.name for p in tmp_path.iterdir()] == ["snapshot.json"]

    def test_output_is_stable(self, tmp_path: Path) -> None:
        """Keys are sorted, so equal data gives byte-identical files."""
        a, b = tmp_path / "a.json", tmp_path / "b.json"
        write_atomic(a, {"z": 1, "a": 2})
        write_atomic(b, {"a": 2, "z": 1})
        assert a.read_bytes() == b.read_bytes()
        assert a.read_text().endswith("\n")


class TestReadJson:
    @pytest.mark.parametrize(
        "text", ["", "{", "not json", "[1, 2]", '"a string"', "null", "\x00\x01"]
    )
    def test_unusable_file_reads_as_none(self, tmp_path: Path, text: str) -> None:
        """Corrupt or non-object JSON is ignored (None), never an exception."""
        path = tmp_path / "x.json"
        path.write_text(text)
        assert read_json(path) is None

    def test_missing_file_reads_as_none(self, tmp_path: Path) -> None:
        """A file that does not exist reads as None."""
        assert read_json(tmp_path / "absent.json") is None

    def test_non_utf8_reads_as_none(self, tmp_path: Path) -> None:
        """Bytes that are not UTF-8 are ignored like any other corruption."""
        path = tmp_path / "x.json"
        path.write_bytes(b'{"a": "\xff\xfe"}')
        assert read_json(path) is None


class TestSnapshot:
    def test_round_trip(self, tmp_path: Path) -> None:
        """What save_snapshot writes, load_snapshot returns: content and action per whitelist."""
        applied = {"web": (WEB, Action.DROP), "ssh": (SSH, Action.REJECT)}
        save_snapshot(tmp_path, "nftwl", applied)
        assert load_snapshot(tmp_path, "nftwl") == applied

    def test_round_trip_of_empty_content(self, tmp_path: Path) -> None:
        """An (allowed) empty whitelist survives the round trip as empty, not as missing."""
        save_snapshot(tmp_path, "nftwl", {"default": (WhitelistContent(), Action.DROP)})
        assert load_snapshot(tmp_path, "nftwl") == {"default": (WhitelistContent(), Action.DROP)}

    def test_file_layout(self, tmp_path: Path) -> None:
        """The snapshot names its format version and table, and spells content readably."""
        save_snapshot(tmp_path, "edge", {"web": (WEB, Action.DROP)})
        data = json.loads((tmp_path / "snapshot.json").read_text())
        assert data == {
            "format": FORMAT_VERSION,
            "table": "edge",
            "whitelists": {
                "web": {
                    "action": "drop",
                    "v4": ["192.0.2.7", "198.51.100.0/24"],
                    "v6": ["2001:db8::/48"],
                    "ports": ["443/tcp"],
                }
            },
        }

    def test_missing_snapshot_is_empty(self, tmp_path: Path) -> None:
        """No snapshot file means no last good state."""
        assert load_snapshot(tmp_path, "nftwl") == {}

    def test_corrupt_snapshot_is_ignored(self, tmp_path: Path) -> None:
        """A truncated snapshot is ignored rather than crashing the daemon."""
        save_snapshot(tmp_path, "nftwl", {"web": (WEB, Action.DROP)})
        path = tmp_path / "snapshot.json"
        path.write_text(path.read_text()[:40])
        assert load_snapshot(tmp_path, "nftwl") == {}

    @pytest.mark.parametrize(
        ("change", "value"),
        [("format", FORMAT_VERSION + 1), ("format", None), ("table", "other")],
    )
    def test_other_format_or_table_is_ignored(
        self, tmp_path: Path, change: str, value: Any
    ) -> None:
        """A snapshot of another format version or of another table is not used."""
        save_snapshot(tmp_path, "nftwl", {"web": (WEB, Action.DROP)})
        path = tmp_path / "snapshot.json"
        data = json.loads(path.read_text())
        data[change] = value
        path.write_text(json.dumps(data))
        assert load_snapshot(tmp_path, "nftwl") == {}

    @pytest.mark.parametrize(
        "bad",
        [
            {"action": "drop", "v4": ["192.0.2.1/24"]},
            {"action": "drop", "ports": ["0/tcp"]},
            {"action": "accept", "v4": ["192.0.2.1"]},
            {"action": "drop", "v4": [["nested"]]},
            "not an object",
            None,
        ],
    )
    def test_tampered_whitelist_is_skipped_others_kept(self, tmp_path: Path, bad: Any) -> None:
        """One invalid whitelist entry in the snapshot is dropped; the valid ones still load."""
        save_snapshot(tmp_path, "nftwl", {"web": (WEB, Action.DROP), "ssh": (SSH, Action.REJECT)})
        path = tmp_path / "snapshot.json"
        data = json.loads(path.read_text())
        data["whitelists"]["web"] = bad
        path.write_text(json.dumps(data))
        assert load_snapshot(tmp_path, "nftwl") == {"ssh": (SSH, Action.REJECT)}

    @pytest.mark.parametrize("whitelists", [["web"], "web", 5, None])
    def test_whitelists_not_an_object_is_ignored(self, tmp_path: Path, whitelists: Any) -> None:
        """A snapshot whose whitelists field is not an object loads as empty, without crashing."""
        (tmp_path / "snapshot.json").write_text(
            json.dumps({"format": FORMAT_VERSION, "table": "nftwl", "whitelists": whitelists})
        )
        assert load_snapshot(tmp_path, "nftwl") == {}


class TestStatus:
    def test_round_trip(self, tmp_path: Path) -> None:
        """save_status then load_status returns the same mapping."""
        status = {"table": "nftwl", "kernel_writes": 3, "whitelists": {"a": {"state": "held"}}}
        save_status(tmp_path, status)
        assert load_status(tmp_path) == status

    def test_missing_status_is_none(self, tmp_path: Path) -> None:
        """Without a status file there is no status."""
        assert load_status(tmp_path) is None
