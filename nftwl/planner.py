"""The planner: (desired table, live table) -> one transaction. Pure; no I/O.

Invariants it keeps, whatever the live state holds:

- Everything is one transaction, so the kernel switches from old to new in one step: an element
  present before and after is never absent, even when a set is flushed and refilled.
- Deltas are computed against the *live* state, never a cache: an element someone deleted by
  hand is not deleted again (that would fail the whole batch), and a stray one is removed.
- Nothing is written when live already equals desired (an empty transaction).
- Sets are created before the rules that refer to them and deleted only after those rules are
  gone.
"""

from __future__ import annotations

from nftwl.costs import DEFAULT_COSTS, CostModel
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
    from nftwl.model import PortRange

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
    """The single transaction that turns ``live`` into ``desired`` (empty if they agree)."""
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
