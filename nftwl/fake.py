"""An in-memory backend that behaves like the kernel where it matters to nftwl.

It applies a transaction all or nothing and refuses what the kernel refuses: deleting a missing
element, adding overlapping intervals to an interval set, deleting a set a rule still refers to,
adding to a set or chain that does not exist. Tests use it to check plans; ``--dry-run`` uses it
to show what would happen.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field

from nftwl.errors import TransactionError
from nftwl.model import Action, PortRange
from nftwl.ruleset import RULE_TAG, Element, RuleSpec, SetState, TableState
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
    Transaction,
)


def _span(e: Element) -> tuple[int, int, int]:
    """(domain, first, last): elements overlap only within one domain."""
    if isinstance(e, PortRange):
        return (0 if e.proto.value == "tcp" else 1, e.low, e.high)
    return (e.version, int(e.network_address), int(e.broadcast_address))


def _first_overlap(elements: set[Element]) -> Element | None:
    spans = sorted((_span(e), e) for e in elements)
    for (a, _), (b, e) in itertools.pairwise(spans):
        if a[0] == b[0] and b[1] <= a[2]:
            return e
    return None


@dataclass(frozen=True)
class OpaqueRule:
    """A live rule nftwl did not write (or cannot parse back): only its comment is known."""

    comment: str | None = None
    whitelist: None = None


def _rule_from_comment(comment: str | None) -> RuleSpec | OpaqueRule:
    parts = (comment or "").split()
    if parts == [RULE_TAG, "established"]:
        return RuleSpec()
    if len(parts) in (4, 5) and parts[0] == RULE_TAG and parts[3] in ("drop", "reject"):
        rule = RuleSpec(parts[1], parts[2], Action(parts[3]), tcp_reset=parts[4:] == ["tcp-reset"])
        if rule.comment == comment:
            return rule
    return OpaqueRule(comment)


Chains = dict[str, list[RuleSpec | OpaqueRule]]


@dataclass
class FakeBackend:
    """Holds one table in memory. ``writes`` counts applied (non-empty) transactions."""

    table: str = "nftwl"
    state: TableState | None = None
    chain_rules: Chains = field(default_factory=dict)
    writes: int = 0
    history: list[Transaction] = field(default_factory=list)
    fail_next: str | None = None
    """Set to an error message to make the next apply fail (as a kernel error would)."""

    @classmethod
    def mirror(cls, live: TableState | None, table: str) -> FakeBackend:
        """A fake holding a copy of a live table, to rehearse transactions (``--dry-run``)."""
        fake = cls(table, copy.deepcopy(live))
        if live is not None:
            fake.chain_rules = {c: [] for c in live.other_chains}
            if live.chain is not None:
                fake.chain_rules["input"] = [_rule_from_comment(c) for c in live.rules]
        return fake

    def read(self) -> TableState | None:
        if self.state is None:
            return None
        live = copy.deepcopy(self.state)
        live.rules = tuple(r.comment for r in self.chain_rules.get("input", []))
        live.rule_specs = ()
        return live

    def present(self) -> bool:
        return self.state is not None and "input" in self.chain_rules

    def counters(self) -> dict[str, tuple[int, int]]:
        return {str(r.comment): (0, 0) for r in self.chain_rules.get("input", [])}

    def apply(self, tx: Transaction) -> None:
        if not tx:
            return
        if self.fail_next is not None:
            msg, self.fail_next = self.fail_next, None
            raise TransactionError(msg)
        state = copy.deepcopy(self.state)
        chains = copy.deepcopy(self.chain_rules)
        for op in tx.ops:
            state = self._one(op, state, chains)
        self.state, self.chain_rules = state, chains
        self.writes += 1
        self.history.append(tx)

    def _one(self, op: object, state: TableState | None, chains: Chains) -> TableState | None:
        if isinstance(op, AddTable):
            return state or TableState(name=self.table)
        if state is None:
            raise TransactionError(f"No such file or directory: table inet {self.table}")
        match op:
            case AddChain(chain=c):
                if c.name not in chains:
                    chains[c.name] = []
                    state.chain = c
            case FlushChain(chain=c):
                self._chain(chains, c).clear()
            case DeleteChain(chain=c):
                if self._chain(chains, c):
                    raise TransactionError(f"Device or resource busy: chain {c} is not empty")
                del chains[c]
                if c == "input":
                    state.chain = None
                state.other_chains = tuple(x for x in state.other_chains if x != c)
            case AddRule(chain=c, rule=r):
                if r.whitelist is not None:
                    for s in r.set_names():
                        if s not in state.sets:
                            raise TransactionError(f"Could not process rule: set {s} missing")
                self._chain(chains, c).append(r)
            case AddSet(spec=s):
                if s.name not in state.sets:
                    state.sets[s.name] = SetState(s)
            case FlushSet(set=s):
                flushed = self._set(state, s)
                # An empty set holds nothing nftwl would not write: it is canonical again.
                flushed.elements, flushed.canonical = frozenset(), True
            case DeleteSet(set=s):
                self._set(state, s)
                for rules in chains.values():
                    if any(r.whitelist and s in r.set_names() for r in rules):
                        raise TransactionError(f"Device or resource busy: set {s} in use")
                del state.sets[s]
            case AddElements(set=s, elements=elems):
                target = self._set(state, s)
                current = set(target.elements) | set(elems)
                if target.spec.kind.interval:
                    clash = _first_overlap(current)
                    if clash is not None:
                        raise TransactionError(f"conflicting intervals specified: {clash}")
                target.elements = frozenset(current)
            case DeleteElements(set=s, elements=elems):
                target = self._set(state, s)
                missing = [e for e in elems if e not in target.elements]
                if missing:
                    raise TransactionError(
                        f"No such file or directory: element {missing[0]} not in set {s}"
                    )
                target.elements = target.elements - set(elems)
            case _:
                raise TypeError(f"unknown operation {op!r}")
        return state

    @staticmethod
    def _chain(chains: Chains, name: str) -> list[RuleSpec | OpaqueRule]:
        if name not in chains:
            raise TransactionError(f"No such file or directory: chain {name}")
        return chains[name]

    @staticmethod
    def _set(state: TableState, name: str) -> SetState:
        if name not in state.sets:
            raise TransactionError(f"No such file or directory: set {name}")
        return state.sets[name]
