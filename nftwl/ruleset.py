"""The objects nftwl owns in the kernel, as plain data, and how whitelists map onto them.

One table holds, per whitelist ``W``:

- ``W_v4_hosts`` / ``W_v6_hosts``: hash sets of single addresses. Deltas to hash sets are cheap
  whatever their size, so the common case (a host joins or leaves) stays cheap.
- ``W_v4_nets`` / ``W_v6_nets``: interval sets of networks. libnftables 1.0.6 re-reads a whole
  interval set on every change, so the planner weighs deltas against full replaces for these.
- ``W_ports``: an interval set of ``protocol . port-range``.

and one base chain ``input`` whose rules are, in order: established/related accept, then per
whitelist and family a guard rule: "to a protected port, from a source in neither set: drop".
Each rule carries a comment naming what it is; comparing comments is how the planner knows the
live rules are already right without re-parsing nft's rendering of them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from nftwl.model import Action, IPv4Network, IPv6Network, PortRange, WhitelistContent

Element = IPv4Network | IPv6Network | PortRange
RULE_TAG = "nftwl/1"
"""Prefix of every rule comment; bump when the rendering of a rule changes between versions."""
CHAIN = "input"


class SetKind(enum.Enum):
    """The five kinds of set a whitelist is stored in."""

    V4_HOSTS = ("v4_hosts", "ipv4_addr", False)
    V4_NETS = ("v4_nets", "ipv4_addr", True)
    V6_HOSTS = ("v6_hosts", "ipv6_addr", False)
    V6_NETS = ("v6_nets", "ipv6_addr", True)
    PORTS = ("ports", "inet_proto . inet_service", True)

    def __init__(self, suffix: str, key_type: str, interval: bool) -> None:
        self.suffix = suffix
        self.key_type = key_type
        self.interval = interval


@dataclass(frozen=True)
class SetSpec:
    """A named set and its kind (key type and flags follow from the kind)."""

    name: str
    kind: SetKind


@dataclass(frozen=True)
class ChainSpec:
    """nftwl's single base chain."""

    name: str = CHAIN
    hook: str = "input"
    priority: int = 0
    policy: str = "accept"
    """Always accept: nftwl only drops what its guard rules match (a hand-set 'drop' is drift)."""


@dataclass(frozen=True)
class RuleSpec:
    """One rule, as meaning rather than syntax; each backend renders it in its own language."""

    whitelist: str | None = None
    """None for the established/related rule, else the whitelist the guard enforces."""
    family: str = ""
    """'ipv4' or 'ipv6' for guard rules."""
    action: Action = Action.DROP
    tcp_reset: bool = False
    """A reject rule for TCP only, answering with a TCP reset: a client sees "connection
    refused" at once, where an ICMP error may only be acted on at its SYN retransmission."""

    @property
    def comment(self) -> str:
        if self.whitelist is None:
            return f"{RULE_TAG} established"
        suffix = " tcp-reset" if self.tcp_reset else ""
        return f"{RULE_TAG} {self.whitelist} {self.family} {self.action}{suffix}"

    def set_names(self) -> tuple[str, str, str]:
        """(hosts set, nets set, ports set) this guard rule refers to."""
        assert self.whitelist is not None
        fam = "v4" if self.family == "ipv4" else "v6"
        w = self.whitelist
        return f"{w}_{fam}_hosts", f"{w}_{fam}_nets", f"{w}_ports"


@dataclass
class SetState:
    """A set and its elements. ``canonical`` is False when the live set holds elements nftwl
    would never write (a hand-added range, a merged interval): such a set is replaced whole."""

    spec: SetSpec
    elements: frozenset[Element] = frozenset()
    canonical: bool = True
    foreign: bool = False
    """A live set of a type nftwl never creates (its ``spec.kind`` is then meaningless)."""


@dataclass
class TableState:
    """A whole table: desired (built here) or live (read by a backend)."""

    name: str
    chain: ChainSpec | None = None
    rules: tuple[str | None, ...] = ()
    """Rule comments in chain order (None for a rule without one)."""
    rule_specs: tuple[RuleSpec, ...] = ()
    """Only on desired state: the rules to write."""
    sets: dict[str, SetState] = field(default_factory=dict)
    other_chains: tuple[str, ...] = ()
    """Live chains in the table other than nftwl's own (left over or hand-made)."""
    owned: bool = True
    """False for a live table nftwl did not create: it is then never written to."""


def split_hosts(
    nets: Iterable[IPv4Network | IPv6Network],
) -> tuple[list[IPv4Network | IPv6Network], list[IPv4Network | IPv6Network]]:
    hosts: list[IPv4Network | IPv6Network] = []
    networks: list[IPv4Network | IPv6Network] = []
    for n in nets:
        (hosts if n.num_addresses == 1 else networks).append(n)
    return hosts, networks


def desired_table(
    table: str,
    whitelists: Mapping[str, tuple[WhitelistContent, Action]],
    priority: int = 0,
) -> TableState:
    """Build the desired table for the given whitelists (name -> content, action)."""
    state = TableState(name=table, chain=ChainSpec(priority=priority))
    rules = [RuleSpec()]
    for wl in sorted(whitelists):
        content, action = whitelists[wl]
        v4_hosts, v4_nets = split_hosts(content.v4)
        v6_hosts, v6_nets = split_hosts(content.v6)
        values: dict[SetKind, Iterable[Element]] = {
            SetKind.V4_HOSTS: v4_hosts,
            SetKind.V4_NETS: v4_nets,
            SetKind.V6_HOSTS: v6_hosts,
            SetKind.V6_NETS: v6_nets,
            SetKind.PORTS: content.ports,
        }
        for kind, elems in values.items():
            spec = SetSpec(f"{wl}_{kind.suffix}", kind)
            state.sets[spec.name] = SetState(spec, frozenset(elems))
        for family in ("ipv4", "ipv6"):
            if action is Action.REJECT:
                rules.append(RuleSpec(wl, family, action, tcp_reset=True))
            rules.append(RuleSpec(wl, family, action))
    state.rule_specs = tuple(rules)
    state.rules = tuple(r.comment for r in rules)
    return state


def content_of(state: TableState, whitelist: str) -> WhitelistContent:
    """Read one whitelist's content back out of a (live) table state."""
    v4: list[IPv4Network] = []
    v6: list[IPv6Network] = []
    ports: list[PortRange] = []
    for kind in SetKind:
        s = state.sets.get(f"{whitelist}_{kind.suffix}")
        if s is None:
            continue
        for e in s.elements:
            if isinstance(e, PortRange):
                ports.append(e)
            elif isinstance(e, IPv4Network):
                v4.append(e)
            else:
                v6.append(e)
    return WhitelistContent.build(v4, v6, ports)


def whitelists_in(state: TableState) -> list[str]:
    """Names of the whitelists whose port set exists in a (live) table."""
    suffix = "_" + SetKind.PORTS.suffix
    return sorted(n[: -len(suffix)] for n in state.sets if n.endswith(suffix))
