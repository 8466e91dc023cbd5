"""The planner: (desired table, live table) -> one transaction. Pure; no I/O.

Invariants it keeps, whatever the live state holds:

- Everything is one transaction, so the kernel switches from old to new in one step: an element
  present before and after is never absent, even when a set is flushed and refilled.
- Deltas are computed against the *live* state, never a cache: an element someone deleted by
  hand is not deleted again (that would fail the whole batch), and a stray one is removed.
- Nothing is written when live already equals desired (an empty transaction).
- Sets are created before the rules that refer to them and deleted only after those rules are
  gone.
- A kept address never moves between two sets in one transaction. The kernel makes a batch's
  changes visible set by set (an interval set's new content is swapped in after a hash set's),
  so "delete 192.0.2.10 from the hosts set, add 192.0.2.8/29 to the networks set" leaves a
  moment in which neither holds 192.0.2.10: measured, as dropped connections. Such an update
  is planned in two steps: a *bridge* that only adds (each set then covers its old and its new
  addresses), then the ordinary transaction, in which every kept address stays in one set.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable
from dataclasses import replace

from nftwl.costs import DEFAULT_COSTS, CostModel
from nftwl.model import PortRange
from nftwl.ruleset import CHAIN, Element, SetState, TableState
from nftwl.transaction import (
    AddChain,
    AddElements,
    AddRule,
    AddSet,
    AddTable,
    DeleteChain,
    DeleteElements,
    DeleteSet,
    FlushChain,
    FlushSet,
    SetChange,
    Transaction,
)


def _sorted(elements: frozenset[Element] | set[Element]) -> tuple[Element, ...]:
    return tuple(sorted(elements, key=_sort_key))


def _sort_key(e: Element) -> tuple[int, int, int, str]:
    if isinstance(e, PortRange):
        return (2, e.low, e.high, e.proto.value)
    return (e.version - 4, int(e.network_address), e.prefixlen, "")


def _fill(tx: Transaction, want: SetState) -> None:
    tx.ops.append(AddSet(want.spec))
    if want.elements:
        tx.ops.append(AddElements(want.spec.name, _sorted(want.elements)))
    tx.changes[want.spec.name] = SetChange(added=len(want.elements))


def _update(tx: Transaction, want: SetState, have: SetState, costs: CostModel) -> None:
    """Bring an existing set of the right kind to the wanted content."""
    name = want.spec.name
    adds = want.elements - have.elements
    dels = have.elements - want.elements
    if not (adds or dels) and have.canonical:
        return
    interval = want.spec.kind.interval
    replace = not have.canonical or costs.prefer_replace(
        interval, len(have.elements), len(want.elements), len(adds), len(dels)
    )
    if replace:
        tx.ops.append(FlushSet(name))
        if want.elements:
            tx.ops.append(AddElements(name, _sorted(want.elements)))
        tx.changes[name] = SetChange(added=len(adds), removed=len(dels), replaced=True)
        return
    # Deletes first: the batch is atomic, so order cannot open a window, but an interval set
    # refuses a new block that overlaps an old one still present (1.2.3.0/24 -> 1.2.2.0/23).
    if dels:
        tx.ops.append(DeleteElements(name, _sorted(dels)))
    if adds:
        tx.ops.append(AddElements(name, _sorted(adds)))
    tx.changes[name] = SetChange(added=len(adds), removed=len(dels))


def plan(
    desired: TableState, live: TableState | None, costs: CostModel = DEFAULT_COSTS
) -> Transaction:
    """The next transaction on the way from ``live`` to ``desired`` (empty if they agree).

    Usually that is the whole way. When a kept address would move between sets it is the add-
    only bridge, marked ``tx.partial``: apply it, read the live state again and plan again.
    """
    if live is not None:
        bridge = _bridge(desired, live)
        if bridge is not None:
            tx = _plan(bridge, live, costs)
            tx.partial = True
            return tx
    return _plan(desired, live, costs)


# -- the bridge step ---------------------------------------------------------------------------

_SIBLINGS = (("v4_hosts", "v4_nets"), ("v6_hosts", "v6_nets"))


def _spans(elements: Iterable[Element]) -> list[tuple[int, int]]:
    out = []
    for e in elements:
        if isinstance(e, PortRange):
            continue
        out.append((int(e.network_address), int(e.broadcast_address)))
    return sorted(out)


def _overlap(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> bool:
    """Whether two sorted lists of disjoint inclusive spans share any point."""
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i][1] < b[j][0]:
            i += 1
        elif b[j][1] < a[i][0]:
            j += 1
        else:
            return True
    return False


def _uncovered(want: frozenset[Element], have: frozenset[Element]) -> set[Element]:
    """Blocks covering the addresses of ``want`` that no element of ``have`` covers, so that
    adding them to an interval set holding ``have`` cannot conflict with it."""
    out: set[Element] = set()
    covered = _spans(have)
    starts = [lo for lo, _ in covered]
    for e in want - have:
        assert not isinstance(e, PortRange)
        first, last = int(e.network_address), int(e.broadcast_address)
        # Spans are sorted and disjoint: only those from the one before `first` on can overlap.
        i = max(bisect.bisect_right(starts, first) - 1, 0)
        cursor = first
        while cursor <= last and i < len(covered):
            lo, hi = covered[i]
            if hi < cursor:
                i += 1
                continue
            if lo > last:
                break
            if lo > cursor:
                out.update(_blocks(e, cursor, lo - 1))
            cursor = hi + 1
            i += 1
        if cursor <= last:
            out.update(_blocks(e, cursor, last))
    return out


def _blocks(like: Element, first: int, last: int) -> list[Element]:
    assert not isinstance(like, PortRange)
    make = type(like.network_address)
    return list(ipaddress.summarize_address_range(make(first), make(last)))


def _bridge(desired: TableState, live: TableState) -> TableState | None:
    """The add-only intermediate state, or None when no kept address changes sets."""
    bridge_sets = dict(desired.sets)
    needed = False
    for name in desired.sets:
        for hosts_suffix, nets_suffix in _SIBLINGS:
            if not name.endswith("_" + hosts_suffix):
                continue
            base = name[: -len(hosts_suffix)]
            hosts, nets = base + hosts_suffix, base + nets_suffix
            have_h, have_n = live.sets.get(hosts), live.sets.get(nets)
            want_h, want_n = desired.sets.get(hosts), desired.sets.get(nets)
            if None in (have_h, have_n, want_h, want_n):
                continue
            assert have_h and have_n and want_h and want_n
            if have_h.foreign or have_n.foreign or not have_n.canonical:
                continue
            # Unsafe: an address deleted from one set that only the other set's additions
            # bring back (if the other set already held it, it stays there throughout).
            moves = _overlap(
                _spans(have_h.elements - want_h.elements),
                _spans(_uncovered(want_n.elements, have_n.elements)),
            ) or _overlap(
                _spans(have_n.elements - want_n.elements),
                _spans(_uncovered(want_h.elements, have_h.elements)),
            )
            if not moves:
                continue
            needed = True
            bridge_sets[hosts] = SetState(want_h.spec, have_h.elements | want_h.elements)
            bridge_sets[nets] = SetState(
                want_n.spec,
                have_n.elements | frozenset(_uncovered(want_n.elements, have_n.elements)),
            )
    if not needed:
        return None
    return replace(desired, sets=bridge_sets)


def _plan(desired: TableState, live: TableState | None, costs: CostModel) -> Transaction:
    tx = Transaction(desired.name)
    if live is None:
        live = TableState(name=desired.name)
        tx.ops.append(AddTable())

    recreate: list[str] = []  # sets whose kind changed: only replaceable once rules let go
    for name, want in desired.sets.items():
        have = live.sets.get(name)
        if have is None:
            _fill(tx, want)
        elif have.foreign or have.spec.kind != want.spec.kind:
            recreate.append(name)
        else:
            _update(tx, want, have, costs)
    obsolete = [n for n in live.sets if n not in desired.sets]

    chain_ok = live.chain == desired.chain
    rules_ok = chain_ok and live.rules == desired.rules and not recreate
    if not rules_ok:
        tx.rules_rewritten = True
        assert desired.chain is not None
        if live.chain is not None and not chain_ok:
            # A base chain's hook or priority cannot be changed in place.
            tx.ops += [FlushChain(CHAIN), DeleteChain(CHAIN)]
        elif live.chain is not None:
            tx.ops.append(FlushChain(CHAIN))
        if not chain_ok:
            tx.ops.append(AddChain(desired.chain))
    # Stray chains in our table may refer to our sets: empty them before any set goes.
    for chain in live.other_chains:
        tx.ops += [FlushChain(chain), DeleteChain(chain)]
    for name in recreate:
        tx.ops.append(DeleteSet(name))
        _fill(tx, desired.sets[name])
    if not rules_ok:
        tx.ops += [AddRule(CHAIN, r) for r in desired.rule_specs]
    for name in obsolete:
        tx.ops.append(DeleteSet(name))
        tx.changes[name] = SetChange(removed=len(live.sets[name].elements))
    return tx
