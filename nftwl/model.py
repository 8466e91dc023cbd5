"""Typed, normalised whitelist content: what parsing produces and the planner consumes."""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

IPv4Network = ipaddress.IPv4Network
IPv6Network = ipaddress.IPv6Network


class Proto(enum.StrEnum):
    """Transport protocols a port entry can protect."""

    TCP = "tcp"
    UDP = "udp"


@dataclass(frozen=True, order=True)
class PortRange:
    """An inclusive port range for one protocol; a single port has low == high."""

    proto: Proto
    low: int
    high: int

    def __post_init__(self) -> None:
        if not (1 <= self.low <= self.high <= 65535):
            raise ValueError(f"invalid port range {self.low}-{self.high}")

    def __str__(self) -> str:
        ports = str(self.low) if self.low == self.high else f"{self.low}-{self.high}"
        return f"{ports}/{self.proto}"


def collapse_ports(ranges: Iterable[PortRange]) -> tuple[PortRange, ...]:
    """Merge overlapping and adjacent ranges per protocol; sorted, disjoint output."""
    out: list[PortRange] = []
    for r in sorted(ranges):
        last = out[-1] if out else None
        if last is not None and last.proto == r.proto and r.low <= last.high + 1:
            if r.high > last.high:
                out[-1] = PortRange(last.proto, last.low, r.high)
        else:
            out.append(r)
    return tuple(out)


@dataclass(frozen=True)
class WhitelistContent:
    """The normalised content of one whitelist.

    Addresses are collapsed per family (``ipaddress.collapse_addresses``): disjoint, sorted,
    adjacent blocks merged where they form a larger CIDR. Ports are merged per protocol.
    """

    v4: tuple[IPv4Network, ...] = ()
    v6: tuple[IPv6Network, ...] = ()
    ports: tuple[PortRange, ...] = ()

    @classmethod
    def build(
        cls,
        v4: Iterable[IPv4Network] = (),
        v6: Iterable[IPv6Network] = (),
        ports: Iterable[PortRange] = (),
    ) -> WhitelistContent:
        """Normalise arbitrary (overlapping, duplicated, unsorted) values."""
        return cls(
            v4=tuple(ipaddress.collapse_addresses(v4)),
            v6=tuple(ipaddress.collapse_addresses(v6)),
            ports=collapse_ports(ports),
        )

    @property
    def has_sources(self) -> bool:
        return bool(self.v4 or self.v6)

    def summary(self) -> str:
        return f"{len(self.v4)} IPv4, {len(self.v6)} IPv6 blocks, {len(self.ports)} port ranges"

    def to_json(self) -> dict[str, Any]:
        return {
            "v4": [_spell(n) for n in self.v4],
            "v6": [_spell(n) for n in self.v6],
            "ports": [str(p) for p in self.ports],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WhitelistContent:
        """Inverse of :meth:`to_json`; re-validates everything (the file may be tampered with)."""
        ports = []
        for text in data.get("ports", []):
            span, _, proto = str(text).partition("/")
            low, _, high = span.partition("-")
            ports.append(PortRange(Proto(proto), int(low), int(high or low)))
        return cls.build(
            v4=(IPv4Network(str(n)) for n in data.get("v4", [])),
            v6=(IPv6Network(str(n)) for n in data.get("v6", [])),
            ports=ports,
        )


def _spell(net: IPv4Network | IPv6Network) -> str:
    """A single address without its /32 or /128, as operators write it."""
    return str(net.network_address) if net.num_addresses == 1 else str(net)


class Action(enum.StrEnum):
    """What happens to a new connection to a protected port from a source not in the list."""

    DROP = "drop"
    REJECT = "reject"
