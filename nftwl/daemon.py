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
RESYNC_SECONDS = 300.0
"""How often the live table is re-read to repair drift (a hand edit) even without events."""


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
    rec.reconcile(force=True)
    last_resync = time.monotonic()
    log.info("watching %d whitelist(s) for table inet %s", len(settings.whitelists), settings.table)
    for changed in source.changes(stop, TICK_MS):
        if stop.is_set():
            break
        resync = time.monotonic() - last_resync >= resync_seconds
        if resync_now is not None and resync_now.is_set():
            resync_now.clear()
            resync = True
        if changed or resync or rec.waiting():
            try:
                rec.reconcile(force=resync)
            except (NftwlError, OSError) as exc:
                # Keep following the sources: the kernel still holds the last good state.
                log.error("reconcile failed: %s", exc)
            if resync:
                last_resync = time.monotonic()
    log.info("stopped; table inet %s left in force", settings.table)
    return rec
