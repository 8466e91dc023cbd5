"""What a change to a set costs in libnftables, so the planner can pick delta or full replace.

libnftables 1.0.6 fetches an interval set's whole content into user space before it changes the
set, and each element deleted from an interval set costs time proportional to the set's size
(see ../shared/docs/kernel-facts.md). So for an interval set of n live elements:

    delta   ~ fetch * n  +  add * adds  +  delete * n * deletes
    replace ~ add * n_new                      (flush set + add every element, one batch)

Hash sets have no such penalty: a delta costs about ``add`` per changed element.

The constants are seconds, fitted from ``bench/apply_bench.py`` in a network namespace on a 2-core
machine of this project (2026-12-03; see bench/RESULTS.md). Only their ratios matter for the
choice, and the ratios were stable across runs; re-measure when libnftables changes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CostModel:
    add: float = 8.8e-6
    """Per element added in a bulk load."""
    fetch: float = 3.2e-6
    """Per live element, once per changed interval set (libnftables' cache fill)."""
    delete: float = 0.5e-6
    """Per live element, per element deleted from an interval set."""

    def delta(self, interval: bool, live: int, adds: int, deletes: int) -> float:
        if not (adds or deletes):
            return 0.0
        if not interval:
            return self.add * (adds + deletes)
        return self.fetch * live + self.add * adds + self.delete * live * deletes

    def replace(self, interval: bool, new: int) -> float:
        # Flushing costs about as little as the fetch; counted so that an empty desired set
        # still has a non-zero price.
        return self.add * new + (self.fetch if interval else self.add)

    def prefer_replace(self, interval: bool, live: int, new: int, adds: int, deletes: int) -> bool:
        return self.replace(interval, new) < self.delta(interval, live, adds, deletes)


DEFAULT_COSTS = CostModel()
