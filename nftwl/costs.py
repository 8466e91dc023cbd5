"""What a change to a set costs in libnftables, so the planner can pick delta or full replace.

libnftables 1.0.6 fetches an interval set's whole content into user space before it changes the
set, and each element deleted from an interval set costs time in proportion to the set's size
(see ../shared/docs/kernel-facts.md). Both grow faster than the set: per element, the fetch and
each delete cost more in a 100k set than in a 1k one. For an interval set of n live elements,
in units of one element's share of a bulk load (``add`` seconds):

    replace ~ n_new                                  (flush set + add every element, one batch)
    delta   ~ n * fetch(n) + adds + n * delete(n) * deletes
    fetch(n)  = fetch_base  + fetch_growth  * n
    delete(n) = delete_base + delete_growth * n

Hash sets have no such penalty: a delta costs about one ``add`` per changed element.

The constants were fitted to ``bench/apply_bench.py`` (2026-12-03, 2-core VM, kernel 6.18,
1k to 100k blocks; bench/RESULTS.md). At those sizes a delta stops paying off after about 20
deletes at 1k, 10 at 20k, 5 at 50k and 2-3 at 100k; above ~180k blocks any change to an
interval set is cheaper as a full replace. Re-measure when libnftables changes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CostModel:
    add: float = 9.5e-6
    """Seconds per element of a bulk load (only ratios matter to the choice)."""
    fetch_base: float = 0.2
    fetch_growth: float = 4.5e-6
    delete_base: float = 0.045
    delete_growth: float = 1.0e-6

    def delta(self, interval: bool, live: int, adds: int, deletes: int) -> float:
        if not (adds or deletes):
            return 0.0
        if not interval:
            return self.add * (adds + deletes)
        fetch = self.fetch_base + self.fetch_growth * live
        delete = self.delete_base + self.delete_growth * live
        return self.add * (live * fetch + adds + live * delete * deletes)

    def replace(self, interval: bool, new: int) -> float:
        # Flushing costs a little too; counted so that an empty desired set still has a price.
        return self.add * (new + 1)

    def prefer_replace(self, interval: bool, live: int, new: int, adds: int, deletes: int) -> bool:
        return self.replace(interval, new) < self.delta(interval, live, adds, deletes)


DEFAULT_COSTS = CostModel()
