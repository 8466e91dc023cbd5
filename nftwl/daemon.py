"""``nftwl run``: reconcile once, then follow the sources until SIGTERM.

On SIGTERM or SIGINT the daemon stops watching and exits, leaving the table and its rules in
force: a restart or an upgrade never opens the firewall, and the next start reconciles against
what it finds (no flush). To remove the rules, delete the table: ``nft delete table inet nftwl``.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

from nftwl.backend import Backend
from nftwl.errors import NftwlError
from nftwl.reconciler import Reconciler
from nftwl.settings import Settings
from nftwl.sources.base import Source

log = logging.getLogger(__name__)

TICK_MS = 500
RESYNC_SECONDS = 60.0
"""How often the live table is re-read to repair drift (a hand edit) even without events."""
PRESENCE_SECONDS = 2.0
"""How often the daemon checks that its table and chain still exist (a cheap listing)."""
RETRY_SECONDS = 5.0
"""How soon a reconcile the kernel refused is tried again."""


def install_signal_handlers(stop: threading.Event, resync: threading.Event) -> None:
    """SIGTERM/SIGINT stop the daemon (rules stay); SIGHUP re-reads the files and the kernel."""

    def on_stop(signum: int, frame: FrameType | None) -> None:
        log.info("received %s; stopping, rules stay in force", signal.Signals(signum).name)
        stop.set()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        log.info("received SIGHUP; re-reading the whitelists and the kernel")
        resync.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)


def _reconcile(rec: Reconciler, force: bool) -> None:
    try:
        rec.reconcile(force=force)
    except (NftwlError, OSError) as exc:
        # Keep following the sources: the kernel still holds what it last accepted.
        log.error("reconcile failed: %s", exc)


def run(
    settings: Settings,
    backend: Backend,
    source: Source,
    stop: threading.Event,
    resync_seconds: float = RESYNC_SECONDS,
    resync_now: threading.Event | None = None,
) -> Reconciler:
    """Run until ``stop`` is set. Returns the reconciler (tests inspect it)."""
    rec = Reconciler(settings, backend, source)
    _reconcile(rec, force=True)
    last_resync = last_check = last_attempt = time.monotonic()
    retry_delay = RETRY_SECONDS
    log.info("watching %d whitelist(s) for table inet %s", len(settings.whitelists), settings.table)
    for changed in source.changes(stop, TICK_MS):
        if stop.is_set():
            break
        now = time.monotonic()
        resync = now - last_resync >= resync_seconds
        if resync_now is not None and resync_now.is_set():
            resync_now.clear()
            resync = True
        if rec.last_outcome.error and now - last_attempt >= retry_delay:
            # Back off while the same error persists (a foreign table, a kernel that keeps
            # refusing): 5 s, 10 s, ... up to the resync interval.
            retry_delay = min(retry_delay * 2, resync_seconds)
            resync = True
        elif not rec.last_outcome.error:
            retry_delay = RETRY_SECONDS
        if not resync and now - last_check >= PRESENCE_SECONDS:
            last_check = now
            # Another tool's "flush ruleset" (nftables.service reload) or a hand "delete table"
            # would otherwise leave the ports open until the next resync.
            if rec.applied and not backend.present():
                log.warning("table inet %s or its chain is gone; restoring it", settings.table)
                resync = True
        if changed or resync or rec.waiting():
            last_attempt = now
            _reconcile(rec, force=resync)
            if resync:
                last_resync = now
    log.info("stopped; table inet %s left in force", settings.table)
    return rec
