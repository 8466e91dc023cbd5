"""Files in the state directory: the last-known-good snapshot and the status report.

Both are written atomically (temp file in the same directory, fsync, rename), so a crash or a
full disk never leaves a half-written file behind: readers see the old version or the new one.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from nftwl.model import Action, WhitelistContent

log = logging.getLogger(__name__)

SNAPSHOT = "snapshot.json"
STATUS = "status.json"
FORMAT_VERSION = 1


def write_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        # mkstemp makes 0600; status and snapshot hold nothing secret, and `nftwl-ctl status`
        # should work for an unprivileged operator.
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None
    return data if isinstance(data, dict) else None


def save_snapshot(
    state_dir: Path, table: str, applied: dict[str, tuple[WhitelistContent, Action]]
) -> None:
    write_atomic(
        state_dir / SNAPSHOT,
        {
            "format": FORMAT_VERSION,
            "table": table,
            "whitelists": {
                name: {"action": str(action), **content.to_json()}
                for name, (content, action) in applied.items()
            },
        },
    )


def load_snapshot(state_dir: Path, table: str) -> dict[str, tuple[WhitelistContent, Action]]:
    """The last applied content per whitelist, or {} if there is none usable."""
    data = read_json(state_dir / SNAPSHOT)
    if not data or data.get("format") != FORMAT_VERSION or data.get("table") != table:
        return {}
    whitelists = data.get("whitelists")
    if not isinstance(whitelists, dict):
        return {}
    out = {}
    for name, body in whitelists.items():
        try:
            out[str(name)] = (WhitelistContent.from_json(body), Action(body.get("action", "drop")))
        except (ValueError, TypeError, AttributeError) as exc:
            log.warning("ignoring whitelist %s in snapshot: %s", name, exc)
    return out


def save_status(state_dir: Path, status: dict[str, Any]) -> None:
    write_atomic(state_dir / STATUS, status)


def load_status(state_dir: Path) -> dict[str, Any] | None:
    return read_json(state_dir / STATUS)
