"""The ``nftwl`` command: run, apply, validate."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from nftwl import __version__, daemon, logs
from nftwl.backend import Backend
from nftwl.errors import ConfigError, NftwlError
from nftwl.fake import FakeBackend
from nftwl.nftables_backend import NftablesBackend
from nftwl.parsing import parse_ports, parse_sources
from nftwl.reconciler import Reconciler
from nftwl.settings import DEFAULT_CONFIG, Settings, load_settings
from nftwl.sources.files import FileSource, read_text
from nftwl.state import load_snapshot

log = logging.getLogger("nftwl")

EPILOG = """\
exit codes: 0 success (or nothing to change), 1 input or kernel problem (the previous rules
stay in force), 2 usage or configuration error.

Rules stay in force when nftwl stops. Remove them with: nft delete table inet <table>
Inspect what is enforced with nftwl-ctl (show, status).
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nftwl",
        description="Keep host port whitelists in nftables named sets, changed only by atomic "
        "transactions.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"nftwl {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--config",
            type=Path,
            help=f"TOML config file (default {DEFAULT_CONFIG}, or $NFTWL_CONFIG)",
        )
        sp.add_argument(
            "--log-level",
            choices=["debug", "info", "warning", "error"],
            help="override log_level from the config",
        )

    run = sub.add_parser(
        "run",
        help="reconcile, then follow the whitelist files until SIGTERM (the daemon)",
        description="Reconcile the kernel with the whitelist files, then watch their "
        "directories and apply every real change as one transaction. On SIGTERM the rules stay "
        "in force.",
    )
    with_config(run)

    apply = sub.add_parser(
        "apply",
        help="reconcile once and exit",
        description="Read the whitelist files, compare with the live table and apply the "
        "difference in one transaction. Exit 0 on success or when nothing changed.",
    )
    with_config(apply)
    apply.add_argument(
        "--dry-run", action="store_true", help="print the transaction instead of applying it"
    )

    validate = sub.add_parser(
        "validate",
        help="check whitelist files without touching the kernel (no root needed)",
        description="Parse files and report every bad line as FILE:LINE: reason. A file whose "
        "name contains 'port' is read as a port list, any other as a source list; --ports and "
        "--sources force the kind. With --config and no files, checks the configured files.",
    )
    validate.add_argument("files", nargs="*", type=Path, metavar="FILE")
    validate.add_argument("--config", type=Path, help="check the files this config names")
    kind = validate.add_mutually_exclusive_group()
    kind.add_argument("--ports", action="store_true", help="read every FILE as a port list")
    kind.add_argument("--sources", action="store_true", help="read every FILE as a source list")
    validate.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "validate":
            return _validate(args)
        settings = load_settings(args.config)
        logs.setup(args.log_level or settings.log_level, settings.log_format)
        if args.command == "apply":
            return _apply(settings, args.dry_run)
        return _run(settings)
    except NftwlError as exc:
        print(f"nftwl: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1


def _backend(settings: Settings) -> NftablesBackend:
    return NftablesBackend(settings.table)


def _apply(settings: Settings, dry_run: bool) -> int:
    # A one-shot apply has no later moment to apply an allowed empty list at: no settling.
    settings = settings.model_copy(update={"settle_seconds": 0.0})
    backend: Backend = _backend(settings)
    source = FileSource(settings.watched_files())
    if dry_run:
        # Rehearse on a copy of the live table: the same reconciler, every step it would take.
        rehearsal = FakeBackend.mirror(backend.read(), settings.table)
        logging.getLogger("nftwl.reconciler").setLevel(logging.WARNING)  # nothing is applied
        rec = Reconciler(settings, rehearsal, source, persist=False)
        rec.last_good = load_snapshot(settings.state_dir, settings.table)
        outcome = rec.reconcile(force=True)
        for name, st in outcome.statuses.items():
            print(f"{name}: {st.state} {st.reason}".rstrip())
            for p in st.problems:
                print(f"  {p}")
        for tx in rehearsal.history:
            print(("# bridge step (loosen first)\n" if tx.partial else "") + tx.render())
        if not rehearsal.history:
            print("# no change")
        return 0 if outcome.ok else 1
    outcome = Reconciler(settings, backend, source).reconcile(force=True)
    if outcome.error:
        return 1
    if not outcome.wrote and outcome.ok:
        log.info("table inet %s already up to date; nothing written", settings.table)
    elif not outcome.ok:
        log.error("input refused for some whitelists; their last good version stays in force")
    return 0 if outcome.ok else 1


def _run(settings: Settings) -> int:
    backend = _backend(settings)
    source = FileSource(settings.watched_files(), settings.debounce_ms)
    stop, resync = threading.Event(), threading.Event()
    daemon.install_signal_handlers(stop, resync)
    try:
        daemon.run(settings, backend, source, stop, resync_now=resync)
    except FileNotFoundError as exc:
        log.error("%s", exc)
        return 1
    return 0


def _validate(args: argparse.Namespace) -> int:
    files: list[tuple[Path, str]] = []
    for f in args.files:
        is_ports = args.ports or (not args.sources and "port" in f.name.lower())
        files.append((f, "ports" if is_ports else "sources"))
    if args.config is not None or not files:
        settings = load_settings(args.config)
        for s, p in settings.watched_files().values():
            files += [(s, "sources"), (p, "ports")]
    failed = False
    report = []
    for path, kind in files:
        try:
            text = read_text(path)
        except (OSError, ValueError) as exc:
            print(f"{path}: cannot read: {exc}", file=sys.stderr)
            failed = True
            continue
        parsed = (parse_ports if kind == "ports" else parse_sources)(text, str(path))
        for e in parsed.errors:
            print(f"{e}", file=sys.stderr)
        failed = failed or bool(parsed.errors)
        if not args.quiet:
            for n in parsed.notices:
                print(f"notice: {n}")
            if not parsed.entries:
                print(
                    f"notice: {path}: no entries; nftwl refuses an empty list unless the "
                    "whitelist sets allow_empty = true"
                )
        c = parsed.collapsed
        report.append(
            {
                "file": str(path),
                "kind": kind,
                "entries": parsed.entries,
                "errors": len(parsed.errors),
                "ipv4": len(c.v4),
                "ipv6": len(c.v6),
                "ports": len(c.ports),
            }
        )
    if not args.quiet:
        for r in report:
            counts = (
                f"{r['ports']} port ranges"
                if r["kind"] == "ports"
                else f"{r['ipv4']} IPv4 + {r['ipv6']} IPv6 blocks after collapsing"
            )
            state = "OK" if not r["errors"] else f"{r['errors']} error(s)"
            print(f"{r['file']}: {r['kind']}, {r['entries']} entries, {counts}: {state}")
    return 1 if failed else 0


def entrypoint() -> None:
    sys.exit(main())
