"""The planner: (desired table, live table) -> one transaction. Pure; no I/O.

Invariants it keeps, whatever the live state holds:

- Everything is one transaction, so the kernel switches from old to new in one step: an element
  present before and after is never absent, even when a set is flushed and refilled.
- Deltas are computed against the *live* state, never a cache: an element someone deleted by
  hand is not deleted again (that would fail the whole batch), and a stray one is removed.
- Nothing is written when live already equals desired (an empty transaction).
- Sets are created before the rules that refer to them and deleted only after those rules are
  gone.
- A connection allowed before and after an update is allowed at every instant of it. The
  kernel makes a batch's changes visible set by set (measured: moving 192.0.2.10 from the
  hosts set to 192.0.2.8/29 in the networks set in one batch dropped packets from it), so an
  update that could expose a mix of old and new sets in which such a connection is dropped is
  planned in two steps: a *bridge* that loosens (see below), then the desired state.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable
from dataclasses import replace

from nftwl.costs import DEFAULT_COSTS, CostModel
from nftwl.model import PortRange, Proto
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

    Usually that is the whole way. When one transaction could drop an allowed connection for an
    instant it is the loosening bridge, marked ``tx.partial``: apply it, read the live state
    again and plan again.
    """
    if live is not None:
        bridge = _bridge(desired, live)
        if bridge is not None:
            tx = _plan(bridge, live, costs)
            tx.partial = True
            return tx
    return _plan(desired, live, costs)


# -- the bridge step ---------------------------------------------------------------------------
#
# The guard rule drops a packet when its port is in the ports set and its source is in neither
# address set. The kernel switches each set to its new content at its own instant, so during a
# transaction any mix of old and new sets can be seen. A packet allowed before and after must
# be allowed in every mix. That fails in exactly three ways:
#   - an address leaves one address set and enters the other (hosts <-> nets);
#   - the same update removes sources and removes ports (old ports, new sources: a removed
#     source is dropped on a port that is about to be unprotected);
#   - the same update adds sources and adds ports (new ports, old sources).
# Then the update goes in two steps: loosen (each address set holds old and new, the ports set
# only ports protected both before and after), then tighten to the desired state. Each step is
# one transaction and safe in every mix; tests/test_planner_steps.py checks all of them.

Span = tuple[int, int]
_PROTO_BASE = {"tcp": 0, "udp": 1 << 17}
_PROTO_OF = {v: k for k, v in _PROTO_BASE.items()}


def _spans(elements: Iterable[Element]) -> list[Span]:
    """Sorted, merged inclusive integer spans of what elements cover (ports offset by proto)."""
    raw = []
    for e in elements:
        if isinstance(e, PortRange):
            base = _PROTO_BASE[e.proto.value]
            raw.append((base + e.low, base + e.high))
        else:
            raw.append((int(e.network_address), int(e.broadcast_address)))
    raw.sort()
    out: list[Span] = []
    for lo, hi in raw:
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _subtract(a: list[Span], b: list[Span]) -> list[Span]:
    """What ``a`` covers and ``b`` does not (both sorted and merged)."""
    out: list[Span] = []
    starts = [lo for lo, _ in b]
    for lo, hi in a:
        cursor = lo
        i = max(bisect.bisect_right(starts, lo) - 1, 0)
        while i < len(b) and b[i][0] <= hi and cursor <= hi:
            blo, bhi = b[i]
            if bhi >= cursor:
                if blo > cursor:
                    out.append((cursor, blo - 1))
                cursor = bhi + 1
            i += 1
        if cursor <= hi:
            out.append((cursor, hi))
    return out


def _overlap(a: list[Span], b: list[Span]) -> bool:
    """Whether two sorted lists of disjoint spans share any point."""
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i][1] < b[j][0]:
            i += 1
        elif b[j][1] < a[i][0]:
            j += 1
        else:
            return True
    return False


def _ports(spans: list[Span]) -> frozenset[Element]:
    out: set[Element] = set()
    for lo, hi in spans:
        base = lo & ~((1 << 17) - 1)
        out.add(PortRange(Proto(_PROTO_OF[base]), lo - base, hi - base))
    return frozenset(out)


def _bridge(desired: TableState, live: TableState) -> TableState | None:
    """The loosening intermediate state, or None when one transaction is safe."""
    bridge_sets = dict(desired.sets)
    needed = False
    for ports_name in desired.sets:
        if not ports_name.endswith("_ports"):
            continue
        base = ports_name[: -len("ports")]
        names = [base + s for s in ("v4_hosts", "v4_nets", "v6_hosts", "v6_nets", "ports")]
        have = [live.sets.get(n) for n in names]
        want = [desired.sets[n] for n in names if n in desired.sets]
        if len(want) != 5 or any(
            h is None or h.foreign or h.spec.kind != w.spec.kind
            for h, w in zip(have, want, strict=False)
        ):
            # A new whitelist (its sets and rules come in one batch, the rules last), or sets of
            # a kind nftwl did not make (re-created in the ordinary step): nothing to bridge.
            continue
        old = [h.elements for h in have if h is not None]
        new = [w.elements for w in want]
        # Cheap exits for the common cases (a no-op; only one set of a family changed and the
        # ports did not): no move between sets and no port change are possible then.
        changed = [o != n for o, n in zip(old, new, strict=True)]
        if not changed[4] and not (changed[0] and changed[1]) and not (changed[2] and changed[3]):
            continue
        moves = False
        removed = added = False
        for h, n in ((0, 1), (2, 3)):  # (hosts, nets) per family
            old_h, old_n, new_h, new_n = (_spans(x) for x in (old[h], old[n], new[h], new[n]))
            moves = moves or _overlap(_subtract(old_h, new_h), _subtract(new_n, old_n))
            moves = moves or _overlap(_subtract(old_n, new_n), _subtract(new_h, old_h))
            old_all, new_all = _spans(old[h] | old[n]), _spans(new[h] | new[n])
            removed = removed or bool(_subtract(old_all, new_all))
            added = added or bool(_subtract(new_all, old_all))
        old_p, new_p = _spans(old[4]), _spans(new[4])
        ports_removed = bool(_subtract(old_p, new_p))
        ports_added = bool(_subtract(new_p, old_p))
        if not (moves or (removed and ports_removed) or (added and ports_added)):
            continue
        needed = True
        for i in (0, 2):  # hosts sets: a hash set holds any mix
            bridge_sets[names[i]] = SetState(want[i].spec, old[i] | new[i])
        for i in (1, 3):  # nets sets: an interval set needs the union collapsed
            union = ipaddress.collapse_addresses(old[i] | new[i])  # type: ignore[type-var]
            bridge_sets[names[i]] = SetState(want[i].spec, frozenset(union))
        both = _subtract(old_p, _subtract(old_p, new_p))  # old ∩ new
        bridge_sets[names[4]] = SetState(want[4].spec, _ports(both))
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
