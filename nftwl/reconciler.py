"""Decide what each whitelist should hold, and bring the kernel there in one transaction.

Used by ``nftwl apply`` (once) and ``nftwl run`` (on every change). The rules it keeps:

- Bad input never reaches the kernel. In strict mode one bad line holds the whole whitelist at
  its last good version; in lenient mode the good lines are applied and the bad ones reported.
- An unreadable input (missing file) is never taken as empty. An empty list is applied only when
  the whitelist allows it, and only after it stayed empty for ``settle_seconds``.
- "Last good" is the snapshot nftwl wrote after its last complete apply, else what the kernel
  held when this process started; so a restart with broken files keeps enforcing the previous
  lists, and a bridge step left in the kernel is never mistaken for one.
- If the desired content equals what was last applied, nothing is read or written (a no-op).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nftwl.backend import Backend
from nftwl.errors import NftwlError, TransactionError
from nftwl.model import Action, WhitelistContent
from nftwl.planner import plan
from nftwl.ruleset import TableState, content_of, desired_table, whitelists_in
from nftwl.settings import Settings
from nftwl.sources.base import LoadResult, Source
from nftwl.state import load_snapshot, save_snapshot, save_status

log = logging.getLogger(__name__)

Desired = dict[str, tuple[WhitelistContent, Action]]
MAX_STATUS_PROBLEMS = 100


@dataclass
class WhitelistStatus:
    state: str
    """applied | held (input refused, last good in force) | pending (waiting to settle) |
    failed (the kernel refused the transaction)."""
    reason: str = ""
    problems: list[str] = field(default_factory=list)
    in_force: str = ""

    def to_json(self) -> dict[str, Any]:
        # A garbage file can have millions of bad lines; the status file shows the first ones.
        shown = self.problems[:MAX_STATUS_PROBLEMS]
        if len(self.problems) > len(shown):
            shown.append(f"... and {len(self.problems) - len(shown)} more")
        return {
            "state": self.state,
            "reason": self.reason,
            "problems": shown,
            "in_force": self.in_force,
        }


@dataclass
class Outcome:
    """What one reconcile did."""

    wrote: bool = False
    summary: str = "no change"
    seconds: float = 0.0
    error: str | None = None
    statuses: dict[str, WhitelistStatus] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and all(s.state == "applied" for s in self.statuses.values())


class Reconciler:
    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        source: Source,
        clock: Callable[[], float] = time.monotonic,
        persist: bool = True,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.source = source
        self.clock = clock
        self.persist = persist
        self.last_good: Desired = (
            load_snapshot(settings.state_dir, settings.table) if persist else {}
        )
        self.applied: Desired | None = None
        self.empty_since: dict[str, float] = {}
        self.writes = 0
        self.last_outcome = Outcome()
        self._status_written: dict[str, Any] | None = None
        self._saved: Desired | None = None
        self._adopted = False
        self.last_change: dict[str, Any] | None = None

    # -- deciding ----------------------------------------------------------------------------

    def _decide(self, name: str, r: LoadResult) -> tuple[WhitelistContent | None, WhitelistStatus]:
        """The content to use for one whitelist (None: keep the last good one) and its status."""
        wl = self.settings.whitelists[name]
        problems = [str(p) for p in r.errors]
        if r.unavailable:
            self.empty_since.pop(name, None)
            return None, WhitelistStatus("held", f"input unavailable: {r.unavailable}")
        if r.errors and self.settings.invalid_input == "strict":
            self.empty_since.pop(name, None)
            return None, WhitelistStatus(
                "held",
                f"{len(r.errors)} invalid line(s); update refused (invalid_input = strict)",
                problems,
            )
        content = r.content
        if content.has_sources and content.ports:
            self.empty_since.pop(name, None)
            status = WhitelistStatus("applied", problems=problems)
            everyone = [str(n) for n in content.v4 if n.prefixlen == 0]
            everyone += [str(n) for n in content.v6 if n.prefixlen == 0]
            if everyone:
                # Legal, but it allows every source of that family: the operator should know.
                status.reason = f"allows every source: {', '.join(everyone)}"
            if problems:
                skipped = f"{len(problems)} invalid line(s) skipped (invalid_input = lenient)"
                status.reason = "; ".join(filter(None, [status.reason, skipped]))
            return content, status
        what = "source list" if not content.has_sources else "port list"
        if not wl.allow_empty:
            return None, WhitelistStatus(
                "held", f"{what} is empty; refused (set allow_empty = true to allow)", problems
            )
        since = self.empty_since.setdefault(name, self.clock())
        waited = self.clock() - since
        if waited < self.settings.settle_seconds:
            return None, WhitelistStatus(
                "pending",
                f"{what} is empty; applied if still empty after {self.settings.settle_seconds:g}s",
                problems,
            )
        return content, WhitelistStatus("applied", f"{what} is empty (allow_empty)", problems)

    def desired(self, results: dict[str, LoadResult]) -> tuple[Desired, dict[str, WhitelistStatus]]:
        desired: Desired = {}
        statuses: dict[str, WhitelistStatus] = {}
        for name, wl in self.settings.whitelists.items():
            content, status = self._decide(name, results[name])
            if content is None:
                previous = self.last_good.get(name)
                if previous is None:
                    status.reason += "; no earlier good version, nothing enforced for it"
                else:
                    content = previous[0]
            if content is not None:
                desired[name] = (content, wl.action)
                status.in_force = content.summary()
            statuses[name] = status
        return desired, statuses

    # -- acting ------------------------------------------------------------------------------

    def _adopt_live(self, live: TableState | None) -> None:
        """Once, at start: what the kernel enforces counts as the last good version of each
        whitelist the snapshot does not know (state dir lost, table kept). The snapshot wins
        where both exist: the kernel may hold a bridge step left by a crash, or an old dump
        restored at boot, while the snapshot is what nftwl last applied in full."""
        self._adopted = True
        if live is None or not live.owned:
            return
        for name in whitelists_in(live):
            if name in self.settings.whitelists and name not in self.last_good:
                action = self.settings.whitelists[name].action
                self.last_good[name] = (content_of(live, name), action)

    def reconcile(self, force: bool = False) -> Outcome:
        """Load, decide, and apply if anything changed. ``force`` re-reads the kernel even when
        the input did not change (start-up, periodic drift check)."""
        # "first" is about this process, not about failures: after a refused transaction the
        # kernel may hold a bridge step, which must never be adopted as a good version.
        first = not self._adopted
        if first:
            self._adopt_live(self.backend.read())
        results = self.source.load()
        desired, statuses = self.desired(results)
        outcome = Outcome(statuses=statuses)
        self._log_statuses(statuses)
        if not force and not first and desired == self.applied:
            self._finish(outcome)
            return outcome
        table = desired_table(self.settings.table, desired, self.settings.chain_priority)
        start = time.perf_counter()
        failures = 0
        steps: list[str] = []
        converged = False
        # At most: a bridge step, the real step, and one retry after a refused transaction.
        for _ in range(4):
            try:
                live = self.backend.read()
            except NftwlError as exc:
                # Possibly right after a bridge step: report it so the daemon retries soon.
                return self._failed(outcome, f"cannot read table inet {self.settings.table}: {exc}")
            if live is None and not desired:
                # Nothing good to enforce yet: do not create a table just to hold no whitelist.
                converged = True
                break
            if live is not None and not live.owned:
                return self._failed(
                    outcome,
                    f"table inet {self.settings.table} exists but was not created by nftwl "
                    "(no rule carries its tag); nftwl never takes over another tool's table. "
                    "Set 'table' to another name, or delete that table if it is a leftover",
                )
            tx = plan(table, live)
            if not tx:
                converged = True
                break
            try:
                self.backend.apply(tx)
            except TransactionError as exc:
                failures += 1
                if failures == 1:
                    # The live state may have moved under us (someone edited the table between
                    # read and apply): read again and re-plan once.
                    log.warning("transaction failed (%s); re-reading the kernel and retrying", exc)
                    continue
                return self._failed(outcome, f"transaction refused by the kernel: {exc}")
            self.writes += 1
            outcome.wrote = True
            steps.append(("bridge (loosen first): " if tx.partial else "") + tx.describe())
            if not tx.partial:
                converged = True
                break
        if not converged:
            return self._failed(outcome, "the kernel did not reach the desired state")
        outcome.summary = "; then ".join(steps) or "no change"
        outcome.seconds = time.perf_counter() - start
        if outcome.wrote:
            log.info(
                "applied table inet %s in %.1f ms: %s",
                self.settings.table,
                outcome.seconds * 1000,
                outcome.summary,
            )
        else:
            log.debug("kernel already up to date")
        if outcome.wrote:
            self.last_change = {
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "ms": round(outcome.seconds * 1000, 1),
                "summary": outcome.summary,
            }
        self.applied = desired
        self.last_good.update(desired)
        if self.persist and desired != self._saved:
            try:
                save_snapshot(self.settings.state_dir, self.settings.table, desired)
                self._saved = desired
            except OSError as exc:
                # The kernel is right; only a restart with broken input and no table would miss
                # this version. Say so, and try again after the next change.
                log.error("cannot save the snapshot in %s: %s", self.settings.state_dir, exc)
        self._finish(outcome)
        return outcome

    def _failed(self, outcome: Outcome, error: str) -> Outcome:
        """A transaction was refused. The kernel holds the last state that was applied, which
        may be a bridge step (old and new together); forget what we think is there, so the next
        reconcile reads the kernel and plans again."""
        outcome.error = error
        self.applied = None
        for status in outcome.statuses.values():
            if status.state == "applied":
                status.state = "failed"
                status.reason = error
        log.error("%s; the kernel keeps what it last accepted; will retry", error)
        self._finish(outcome)
        return outcome

    def _log_statuses(self, statuses: dict[str, WhitelistStatus]) -> None:
        """Log a whitelist's problems when they change, not on every event or tick."""
        for name, status in statuses.items():
            previous = self.last_outcome.statuses.get(name)
            if previous == status:
                continue
            if status.state != "applied" or status.problems or status.reason:
                log.warning("whitelist %s: %s", name, status.reason)
                for p in status.problems[:20]:
                    log.warning("  %s", p)
                if len(status.problems) > 20:
                    log.warning("  ... and %d more", len(status.problems) - 20)
            elif previous is not None and previous.state != "applied":
                log.info("whitelist %s: input is valid again", name)

    def waiting(self) -> bool:
        """True while an allowed empty list is waiting to settle (the daemon ticks for it)."""
        # Not ``empty_since``: that stays set once the empty list is applied, and would keep the
        # daemon reloading on every tick for as long as the list stays empty.
        return any(s.state == "pending" for s in self.last_outcome.statuses.values())

    def _finish(self, outcome: Outcome) -> None:
        self.last_outcome = outcome
        if not self.persist:
            return
        status = {
            "pid": os.getpid(),
            "table": self.settings.table,
            "backend": "nftables",
            "kernel_writes": self.writes,
            "last_error": outcome.error,
            "last_change": self.last_change,
            "whitelists": {n: s.to_json() for n, s in outcome.statuses.items()},
        }
        if status != self._status_written:
            try:
                save_status(
                    self.settings.state_dir,
                    {**status, "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                )
                self._status_written = dict(status)
            except OSError as exc:
                log.error("cannot write the status file in %s: %s", self.settings.state_dir, exc)
