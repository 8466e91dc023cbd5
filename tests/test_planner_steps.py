"""The planner's step sequence is safe even if the kernel shows each set's new content at a
different instant (it does: measured in tests/kernel/test_no_window.py).

For every transaction it emits and every pair of sibling sets (hosts, nets) of one family, an
address present both before and after the transaction must be present in every mix of old and
new set contents.
"""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from nftwl.fake import FakeBackend
from nftwl.model import Action, IPv4Network, PortRange, Proto, WhitelistContent
from nftwl.planner import plan
from nftwl.ruleset import TableState, desired_table

PORTS = (PortRange(Proto.TCP, 22, 22),)
BASE = int(ipaddress.IPv4Address("10.0.0.0"))


def _addresses(state: TableState, name: str) -> set[int]:
    out: set[int] = set()
    for e in state.sets[name].elements:
        assert not isinstance(e, PortRange)
        out.update(range(int(e.network_address), int(e.broadcast_address) + 1))
    return out


def _ports(state: TableState) -> set[tuple[str, int]]:
    out: set[tuple[str, int]] = set()
    for e in state.sets["w_ports"].elements:
        assert isinstance(e, PortRange)
        out.update((e.proto.value, p) for p in range(e.low, e.high + 1))
    return out


SOURCES = range(BASE, BASE + 256 + 4)
PACKETS = [(proto, port) for proto in ("tcp", "udp") for port in range(20, 32)]


def _check_step(before: TableState, after: TableState) -> None:
    """Every connection allowed before and after is allowed in each of the 8 mixes of old and
    new (hosts, nets, ports) sets, for IPv4 (the generated whitelists are IPv4 only)."""
    sets = {
        "hosts": (_addresses(before, "w_v4_hosts"), _addresses(after, "w_v4_hosts")),
        "nets": (_addresses(before, "w_v4_nets"), _addresses(after, "w_v4_nets")),
        "ports": (_ports(before), _ports(after)),
    }
    mixes = [(h, n, p) for h in (0, 1) for n in (0, 1) for p in (0, 1)]
    for src in SOURCES:
        for packet in PACKETS:

            def allowed(h: int, n: int, p: int, src: int = src, packet=packet) -> bool:  # type: ignore[no-untyped-def]
                protected = packet in sets["ports"][p]
                return not protected or src in sets["hosts"][h] or src in sets["nets"][n]

            if allowed(0, 0, 0) and allowed(1, 1, 1):
                for mix in mixes:
                    assert allowed(*mix), f"{src} {packet} dropped in mix {mix}"


blocks = st.lists(
    st.tuples(st.integers(0, 63), st.sampled_from([32, 31, 30, 29, 28])).map(
        lambda t: IPv4Network((BASE + t[0] * 4, t[1]), strict=False)
    ),
    max_size=12,
)


ports = st.lists(
    st.tuples(st.sampled_from(list(Proto)), st.integers(20, 31), st.integers(0, 3)).map(
        lambda t: PortRange(t[0], t[1], min(t[1] + t[2], 31))
    ),
    min_size=1,
    max_size=4,
)


def _content(nets: list[IPv4Network], port_list: tuple[PortRange, ...] = PORTS) -> WhitelistContent:
    return WhitelistContent.build(nets, [], port_list)


class TestStepSafety:
    @settings(max_examples=300, deadline=None)
    @given(old=blocks, new=blocks, old_ports=ports, new_ports=ports)
    def test_no_allowed_connection_is_dropped_in_any_mix(
        self,
        old: list[IPv4Network],
        new: list[IPv4Network],
        old_ports: list[PortRange],
        new_ports: list[PortRange],
    ) -> None:
        """Every emitted step allows, in all old/new set mixes, what both its ends allow; the
        sequence reaches the desired state in at most two transactions."""
        backend = FakeBackend("nftwl")
        first = _content(old, tuple(old_ports))
        backend.apply(plan(desired_table("nftwl", {"w": (first, Action.DROP)}), None))
        want = desired_table("nftwl", {"w": (_content(new, tuple(new_ports)), Action.DROP)})
        steps = 0
        while True:
            before = backend.read()
            assert before is not None
            tx = plan(want, before)
            if not tx:
                break
            backend.apply(tx)
            after = backend.read()
            assert after is not None
            _check_step(before, after)
            steps += 1
            assert steps <= 2, "more than a bridge and the real step"
        final = backend.read()
        assert final is not None
        for name, s in want.sets.items():
            assert final.sets[name].elements == s.elements

    def test_host_to_covering_network_is_bridged(self) -> None:
        """192.0.2.10 (hosts) -> 192.0.2.8/29 (nets): an add-only bridge, then the rest."""
        backend = FakeBackend("nftwl")
        old = _content([IPv4Network("192.0.2.10/32"), IPv4Network("198.51.100.0/24")])
        new = _content([IPv4Network("192.0.2.8/29"), IPv4Network("198.51.100.0/24")])
        backend.apply(plan(desired_table("nftwl", {"w": (old, Action.DROP)}), None))
        want = desired_table("nftwl", {"w": (new, Action.DROP)})
        bridge = plan(want, backend.read())
        assert bridge.partial
        assert all(type(op).__name__ == "AddElements" for op in bridge.ops)
        backend.apply(bridge)
        final = plan(want, backend.read())
        assert not final.partial
        backend.apply(final)
        assert not plan(want, backend.read())

    def test_unrelated_change_is_one_transaction(self) -> None:
        """Without a kept address changing sets, the update stays a single transaction."""
        backend = FakeBackend("nftwl")
        old = _content([IPv4Network("192.0.2.10/32"), IPv4Network("198.51.100.0/24")])
        new = _content([IPv4Network("192.0.2.11/32"), IPv4Network("203.0.113.0/24")])
        backend.apply(plan(desired_table("nftwl", {"w": (old, Action.DROP)}), None))
        want = desired_table("nftwl", {"w": (new, Action.DROP)})
        tx = plan(want, backend.read())
        assert not tx.partial
        backend.apply(tx)
        assert not plan(want, backend.read())
