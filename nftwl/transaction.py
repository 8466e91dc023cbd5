"""A transaction: an ordered list of operations on nftwl's table, applied all or nothing.

Plain data, built by the planner and executed by a backend. ``render()`` shows it as nft-like
text for humans (logs, ``--dry-run``); backends never parse that text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nftwl.ruleset import ChainSpec, Element, RuleSpec, SetSpec


@dataclass(frozen=True)
class AddTable:
    pass


@dataclass(frozen=True)
class AddChain:
    chain: ChainSpec


@dataclass(frozen=True)
class FlushChain:
    chain: str


@dataclass(frozen=True)
class DeleteChain:
    chain: str


@dataclass(frozen=True)
class AddRule:
    chain: str
    rule: RuleSpec


@dataclass(frozen=True)
class AddSet:
    spec: SetSpec


@dataclass(frozen=True)
class FlushSet:
    set: str


@dataclass(frozen=True)
class DeleteSet:
    set: str


@dataclass(frozen=True)
class AddElements:
    set: str
    elements: tuple[Element, ...]


@dataclass(frozen=True)
class DeleteElements:
    set: str
    elements: tuple[Element, ...]


Op = (
    AddTable
    | AddChain
    | FlushChain
    | DeleteChain
    | AddRule
    | AddSet
    | FlushSet
    | DeleteSet
    | AddElements
    | DeleteElements
)


@dataclass
class SetChange:
    """What a transaction does to one set, for logs."""

    added: int = 0
    removed: int = 0
    replaced: bool = False


@dataclass
class Transaction:
    table: str
    ops: list[Op] = field(default_factory=list)
    changes: dict[str, SetChange] = field(default_factory=dict)
    rules_rewritten: bool = False
    partial: bool = False
    """A bridge step: apply it, then plan again from the new live state (see planner)."""

    def __bool__(self) -> bool:
        return bool(self.ops)

    def describe(self) -> str:
        """One line for logs: what changes where."""
        if not self.ops:
            return "no change"
        parts = []
        for name, ch in sorted(self.changes.items()):
            if not (ch.added or ch.removed or ch.replaced):
                continue
            how = " (full replace)" if ch.replaced else ""
            parts.append(f"{name} +{ch.added} -{ch.removed}{how}")
        if self.rules_rewritten:
            parts.append("rules rewritten")
        return ", ".join(parts) or f"{len(self.ops)} structural operations"

    def render(self) -> str:
        """nft-like text for humans; never fed to a backend."""
        lines = []
        t = f"inet {self.table}"
        for op in self.ops:
            match op:
                case AddTable():
                    lines.append(f"add table {t}")
                case AddChain(chain=c):
                    lines.append(
                        f"add chain {t} {c.name} {{ type filter hook {c.hook} "
                        f"priority {c.priority}; policy {c.policy}; }}"
                    )
                case FlushChain(chain=c):
                    lines.append(f"flush chain {t} {c}")
                case DeleteChain(chain=c):
                    lines.append(f"delete chain {t} {c}")
                case AddRule(chain=c, rule=r):
                    lines.append(f'add rule {t} {c} ... comment "{r.comment}"')
                case AddSet(spec=s):
                    flags = " flags interval;" if s.kind.interval else ""
                    lines.append(f"add set {t} {s.name} {{ type {s.kind.key_type};{flags} }}")
                case FlushSet(set=s):
                    lines.append(f"flush set {t} {s}")
                case DeleteSet(set=s):
                    lines.append(f"delete set {t} {s}")
                case AddElements(set=s, elements=e):
                    lines.append(f"add element {t} {s} {{ {_elements(e)} }}")
                case DeleteElements(set=s, elements=e):
                    lines.append(f"delete element {t} {s} {{ {_elements(e)} }}")
        return "\n".join(lines)


def _elements(elements: tuple[Element, ...], limit: int = 8) -> str:
    shown = ", ".join(str(e) for e in elements[:limit])
    more = len(elements) - limit
    return shown + (f", ... ({more} more)" if more > 0 else "")
