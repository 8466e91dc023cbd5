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


def _check_step(before: TableState, after: TableState) -> None:
    for fam in ("v4", "v6"):
        a, b = f"w_{fam}_hosts", f"w_{fam}_nets"
        if a not in before.sets or b not in before.sets:
            continue
        old_a, old_b = _addresses(before, a), _addresses(before, b)
        new_a, new_b = _addresses(after, a), _addresses(after, b)
        kept = (old_a | old_b) & (new_a | new_b)
        assert kept <= old_a | new_b, "absent while hosts is old and nets already new"
        assert kept <= new_a | old_b, "absent while hosts is new and nets still old"


blocks = st.lists(
    st.tuples(st.integers(0, 63), st.sampled_from([32, 31, 30, 29, 28])).map(
        lambda t: IPv4Network((BASE + t[0] * 4, t[1]), strict=False)
    ),
    max_size=12,
)


def _content(nets: list[IPv4Network]) -> WhitelistContent:
    return WhitelistContent.build(nets, [], PORTS)


class TestStepSafety:
    @settings(max_examples=300, deadline=None)
    @given(old=blocks, new=blocks)
    def test_no_kept_address_vanishes_between_sets(
        self, old: list[IPv4Network], new: list[IPv4Network]
    ) -> None:
        """Every emitted step keeps kept addresses visible in all old/new set mixes, and the
        sequence reaches the desired state in at most two transactions."""
        backend = FakeBackend("nftwl")
        backend.apply(plan(desired_table("nftwl", {"w": (_content(old), Action.DROP)}), None))
        want = desired_table("nftwl", {"w": (_content(new), Action.DROP)})
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
