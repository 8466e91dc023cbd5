"""``nftwl-ctl``: look at what nftwl enforces, by hand. Read-only."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nftwl.errors import NftwlError
from nftwl.nftables_backend import NftablesBackend
from nftwl.ruleset import content_of, whitelists_in
from nftwl.settings import DEFAULT_CONFIG, load_settings
from nftwl.state import load_status


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nftwl-ctl", description="Inspect the whitelists nftwl keeps in the kernel."
    )
    p.add_argument("--config", type=Path, help=f"config file (default {DEFAULT_CONFIG})")
    p.add_argument("--table", help="table name (default: from the config)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    show = sub.add_parser("show", help="print the live whitelists from the kernel")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.add_argument("whitelist", nargs="?", help="only this whitelist")
    status = sub.add_parser(
        "status",
        help="what the daemon last did and why",
        description="Read the status file the last nftwl run or apply wrote. Exit 0 when every "
        "whitelist is applied, 3 when one is held, pending or failed, 1 on errors.",
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        table = args.table or settings.table
        if args.command == "status":
            return _status(settings.state_dir, args.json)
        return _show(table, args.whitelist, args.json)
    except NftwlError as exc:
        print(f"nftwl-ctl: {exc}", file=sys.stderr)
        return 1


def _show(table: str, only: str | None, as_json: bool) -> int:
    backend = NftablesBackend(table)
    live = backend.read()
    if live is None:
        print(f"nftwl-ctl: table inet {table} does not exist (nftwl has not run?)", file=sys.stderr)
        return 1
    counters = backend.counters()
    out: dict[str, Any] = {"table": f"inet {table}", "whitelists": {}}
    for name in whitelists_in(live):
        if only and name != only:
            continue
        c = content_of(live, name)
        dropped = [v for k, v in counters.items() if k.split()[1:2] == [name]]
        out["whitelists"][name] = {
            **c.to_json(),
            "counts": {"ipv4": len(c.v4), "ipv6": len(c.v6), "ports": len(c.ports)},
            "dropped": {
                "packets": sum(p for p, _ in dropped),
                "bytes": sum(b for _, b in dropped),
            },
        }
    if only and only not in out["whitelists"]:
        print(f"nftwl-ctl: no whitelist {only!r} in table inet {table}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"table {out['table']}")
    for name, wl in out["whitelists"].items():
        n = wl["counts"]
        d = wl["dropped"]
        print(
            f"\nwhitelist {name}: {n['ipv4']} IPv4, {n['ipv6']} IPv6 blocks; {n['ports']} port "
            f"ranges; dropped {d['packets']} packets"
        )
        print("  ports:   " + (", ".join(wl["ports"]) or "(none)"))
        for fam in ("v4", "v6"):
            items = wl[fam]
            shown = ", ".join(items[:20]) + (
                f", ... ({len(items) - 20} more)" if len(items) > 20 else ""
            )
            print(f"  {'IPv4' if fam == 'v4' else 'IPv6'}:    {shown or '(none)'}")
    return 0


def _status(state_dir: Path, as_json: bool) -> int:
    status = load_status(state_dir)
    if status is None:
        print(f"nftwl-ctl: no status in {state_dir} (nftwl has not run?)", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(status, indent=2))
        return 0
    print(f"table inet {status.get('table')}  updated {status.get('updated')}", end="")
    print(f"  by pid {status.get('pid')} ({_liveness(status.get('pid'))})")
    change = status.get("last_change")
    if change:
        print(f"last change {change['at']} ({change['ms']} ms): {change['summary']}")
    if status.get("last_error"):
        print(f"last error: {status['last_error']}")
    healthy = not status.get("last_error")
    for name, wl in (status.get("whitelists") or {}).items():
        state = wl.get("state", "unknown")
        print(f"\n{name}: {state}" + (f": {wl['reason']}" if wl.get("reason") else ""))
        if wl.get("in_force"):
            print(f"  in force: {wl['in_force']}")
        for p in wl.get("problems", [])[:20]:
            print(f"  {p}")
        healthy = healthy and state == "applied"
    return 0 if healthy else 3


def _liveness(pid: object) -> str:
    if not isinstance(pid, int) or pid <= 0:
        return "unknown"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "no longer running"
    except PermissionError:
        pass
    return "running"


def entrypoint() -> None:
    sys.exit(main())
