"""The in-memory backend (nftwl.fake): it must refuse what the kernel refuses, all or nothing."""

from __future__ import annotations

import copy

import pytest

from nftwl.errors import TransactionError
from nftwl.fake import FakeBackend
from nftwl.model import IPv4Network, IPv6Network, PortRange, Proto
from nftwl.ruleset import CHAIN, ChainSpec, RuleSpec, SetKind, SetSpec
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
    Op,
    Transaction,
)

TCP, UDP = Proto.TCP, Proto.UDP
NETS = SetSpec("w_v4_nets", SetKind.V4_NETS)
HOSTS = SetSpec("w_v4_hosts", SetKind.V4_HOSTS)
V6_NETS = SetSpec("w_v6_nets", SetKind.V6_NETS)
PORTS = SetSpec("w_ports", SetKind.PORTS)


def net(text: str) -> IPv4Network:
    return IPv4Network(text)


def tx(*ops: Op) -> Transaction:
    return Transaction("nftwl", list(ops))


def base_ops() -> list[Op]:
    """A table with the four sets used below, the input chain and no rules."""
    return [
        AddTable(),
        AddSet(HOSTS),
        AddSet(NETS),
        AddSet(V6_NETS),
        AddSet(PORTS),
        AddChain(ChainSpec()),
    ]


@pytest.fixture
def fake() -> FakeBackend:
    backend = FakeBackend()
    backend.apply(tx(*base_ops()))
    backend.writes = 0
    backend.history.clear()
    return backend


def elements(fake: FakeBackend, name: str) -> frozenset[object]:
    assert fake.state is not None
    return fake.state.sets[name].elements  # type: ignore[return-value]


class TestApplyAllOrNothing:
    def test_successful_transaction_counts_one_write(self, fake: FakeBackend) -> None:
        """A non-empty transaction that succeeds is one write and is recorded in history."""
        t = tx(AddElements(NETS.name, (net("192.0.2.0/24"),)))
        fake.apply(t)
        assert fake.writes == 1
        assert fake.history == [t]
        assert elements(fake, NETS.name) == {net("192.0.2.0/24")}

    def test_empty_transaction_is_not_a_write(self, fake: FakeBackend) -> None:
        """An empty transaction touches nothing and is not counted."""
        before = copy.deepcopy(fake.state)
        fake.apply(tx())
        assert fake.writes == 0
        assert fake.history == []
        assert fake.state == before

    def test_failure_midway_leaves_state_untouched(self, fake: FakeBackend) -> None:
        """When a later operation fails, the earlier ones of the same batch do not take effect."""
        fake.apply(tx(AddElements(NETS.name, (net("192.0.2.0/24"),))))
        before_state = copy.deepcopy(fake.state)
        before_rules = copy.deepcopy(fake.chain_rules)
        bad = tx(
            AddElements(HOSTS.name, (net("198.51.100.1/32"),)),
            FlushSet(NETS.name),
            AddRule(CHAIN, RuleSpec()),
            DeleteElements(NETS.name, (net("203.0.113.0/24"),)),  # not there: fails
        )
        with pytest.raises(TransactionError, match="No such file or directory"):
            fake.apply(bad)
        assert fake.state == before_state
        assert fake.chain_rules == before_rules
        assert fake.writes == 1
        assert fake.history[-1] is not bad

    def test_fail_next_fails_exactly_one_apply(self, fake: FakeBackend) -> None:
        """fail_next makes the next apply raise that message without any effect, then clears."""
        fake.fail_next = "Operation not permitted"
        t = tx(AddElements(NETS.name, (net("192.0.2.0/24"),)))
        with pytest.raises(TransactionError, match="Operation not permitted"):
            fake.apply(t)
        assert elements(fake, NETS.name) == frozenset()
        assert fake.writes == 0
        assert fake.fail_next is None
        fake.apply(t)
        assert elements(fake, NETS.name) == {net("192.0.2.0/24")}

    def test_fail_next_is_kept_for_an_empty_transaction(self) -> None:
        """An empty transaction never reaches the kernel, so it does not consume fail_next."""
        fake = FakeBackend(fail_next="boom")
        fake.apply(tx())
        assert fake.fail_next == "boom"


class TestRead:
    def test_missing_table_reads_as_none(self) -> None:
        """A backend without the table reports None, not an empty table."""
        assert FakeBackend().read() is None

    def test_read_is_a_copy(self, fake: FakeBackend) -> None:
        """Mutating what read() returned does not change the backend's state."""
        live = fake.read()
        assert live is not None
        live.sets[NETS.name].elements = frozenset({net("10.0.0.0/8")})
        del live.sets[HOSTS.name]
        assert elements(fake, NETS.name) == frozenset()
        assert HOSTS.name in fake.state.sets  # type: ignore[union-attr]

    def test_read_reports_rule_comments_in_order(self, fake: FakeBackend) -> None:
        """Live rules are reported as their comments in chain order, without specs."""
        fake.apply(tx(AddRule(CHAIN, RuleSpec()), AddRule(CHAIN, RuleSpec("w", "ipv4"))))
        live = fake.read()
        assert live is not None
        assert live.rules == ("nftwl/1 established", "nftwl/1 w ipv4 drop")
        assert live.rule_specs == ()
        assert live.chain == ChainSpec()


class TestRefusals:
    def test_operation_without_table_is_refused(self) -> None:
        """Anything but add table on a missing table fails like the kernel's ENOENT."""
        with pytest.raises(TransactionError, match="No such file or directory: table"):
            FakeBackend().apply(tx(AddSet(NETS)))

    @pytest.mark.parametrize(
        "op",
        [
            AddElements("nope", (net("192.0.2.0/24"),)),
            DeleteElements("nope", (net("192.0.2.0/24"),)),
            FlushSet("nope"),
            DeleteSet("nope"),
            FlushChain("nope"),
            DeleteChain("nope"),
            AddRule("nope", RuleSpec()),
        ],
        ids=lambda op: type(op).__name__,
    )
    def test_missing_object_is_refused(self, fake: FakeBackend, op: Op) -> None:
        """Operations on a set or chain that does not exist fail."""
        with pytest.raises(TransactionError, match="No such file or directory"):
            fake.apply(tx(op))

    def test_deleting_a_missing_element_is_refused(self, fake: FakeBackend) -> None:
        """Deleting an element the set does not hold fails the whole batch (no destroy)."""
        fake.apply(tx(AddElements(HOSTS.name, (net("192.0.2.1/32"),))))
        with pytest.raises(TransactionError, match=r"192\.0\.2\.2/32 not in set w_v4_hosts"):
            fake.apply(tx(DeleteElements(HOSTS.name, (net("192.0.2.1/32"), net("192.0.2.2/32")))))
        assert elements(fake, HOSTS.name) == {net("192.0.2.1/32")}

    @pytest.mark.parametrize(
        ("spec", "present", "added"),
        [
            (NETS, [net("192.0.2.0/24")], [net("192.0.2.128/25")]),
            (NETS, [net("192.0.3.0/24")], [net("192.0.2.0/23")]),
            (NETS, [], [net("10.0.0.0/8"), net("10.1.0.0/16")]),
            (V6_NETS, [IPv6Network("2001:db8::/48")], [IPv6Network("2001:db8::/64")]),
            (PORTS, [PortRange(TCP, 80, 90)], [PortRange(TCP, 90, 100)]),
        ],
    )
    def test_overlapping_interval_is_refused(
        self, fake: FakeBackend, spec: SetSpec, present: list[object], added: list[object]
    ) -> None:
        """An interval set refuses an element overlapping one already present or in the batch."""
        if present:
            fake.apply(tx(AddElements(spec.name, tuple(present))))  # type: ignore[arg-type]
        with pytest.raises(TransactionError, match="conflicting intervals"):
            fake.apply(tx(AddElements(spec.name, tuple(added))))  # type: ignore[arg-type]
        assert elements(fake, spec.name) == frozenset(present)

    @pytest.mark.parametrize(
        ("spec", "values"),
        [
            (NETS, [net("192.0.2.0/24"), net("192.0.3.0/24")]),
            (PORTS, [PortRange(TCP, 80, 90), PortRange(UDP, 80, 90)]),
            (PORTS, [PortRange(TCP, 80, 90), PortRange(TCP, 91, 100)]),
        ],
    )
    def test_touching_or_cross_protocol_intervals_are_accepted(
        self, fake: FakeBackend, spec: SetSpec, values: list[object]
    ) -> None:
        """Adjacent intervals, and equal port ranges of different protocols, do not overlap."""
        fake.apply(tx(AddElements(spec.name, tuple(values))))  # type: ignore[arg-type]
        assert elements(fake, spec.name) == frozenset(values)

    def test_delete_then_add_overlapping_in_one_batch_is_accepted(self, fake: FakeBackend) -> None:
        """Deleting the old block before adding the wider one works inside one transaction."""
        fake.apply(tx(AddElements(NETS.name, (net("192.0.3.0/24"),))))
        fake.apply(
            tx(
                DeleteElements(NETS.name, (net("192.0.3.0/24"),)),
                AddElements(NETS.name, (net("192.0.2.0/23"),)),
            )
        )
        assert elements(fake, NETS.name) == {net("192.0.2.0/23")}

    def test_deleting_a_set_in_use_is_refused(self, fake: FakeBackend) -> None:
        """A set a rule refers to cannot be deleted; after flushing the chain it can."""
        fake.apply(tx(AddRule(CHAIN, RuleSpec("w", "ipv4"))))
        with pytest.raises(TransactionError, match="set w_ports in use"):
            fake.apply(tx(DeleteSet(PORTS.name)))
        fake.apply(tx(FlushChain(CHAIN), DeleteSet(PORTS.name)))
        assert PORTS.name not in fake.state.sets  # type: ignore[union-attr]

    def test_rule_referring_to_a_missing_set_is_refused(self, fake: FakeBackend) -> None:
        """A guard rule cannot be added before the sets it refers to exist."""
        with pytest.raises(TransactionError, match="set other_v4_hosts missing"):
            fake.apply(tx(AddRule(CHAIN, RuleSpec("other", "ipv4"))))

    def test_deleting_a_non_empty_chain_is_refused(self, fake: FakeBackend) -> None:
        """A chain must be flushed before it is deleted."""
        fake.apply(tx(AddRule(CHAIN, RuleSpec())))
        with pytest.raises(TransactionError, match="Device or resource busy"):
            fake.apply(tx(DeleteChain(CHAIN)))
        fake.apply(tx(FlushChain(CHAIN), DeleteChain(CHAIN)))
        assert fake.read().chain is None  # type: ignore[union-attr]

    def test_flush_set_empties_it(self, fake: FakeBackend) -> None:
        """flush set removes every element and keeps the set."""
        fake.apply(tx(AddElements(NETS.name, (net("192.0.2.0/24"), net("10.0.0.0/8")))))
        fake.apply(tx(FlushSet(NETS.name)))
        assert elements(fake, NETS.name) == frozenset()

    def test_flush_set_makes_a_non_canonical_set_canonical(self, fake: FakeBackend) -> None:
        """After a flush the set holds only what nftwl writes next, so it reads as canonical."""
        fake.state.sets[NETS.name].canonical = False  # type: ignore[union-attr]
        fake.apply(tx(FlushSet(NETS.name), AddElements(NETS.name, (net("192.0.2.0/24"),))))
        assert fake.read().sets[NETS.name].canonical  # type: ignore[union-attr]

    def test_deleted_stray_chain_is_gone_from_reads(self, fake: FakeBackend) -> None:
        """A deleted extra chain no longer shows up in other_chains (nor in the chain map)."""
        fake.chain_rules["stray"] = []
        fake.state.other_chains = ("stray", "kept")  # type: ignore[union-attr]
        fake.chain_rules["kept"] = []
        fake.apply(tx(DeleteChain("stray")))
        assert fake.read().other_chains == ("kept",)  # type: ignore[union-attr]
        assert "stray" not in fake.chain_rules

    def test_unknown_operation_is_a_type_error(self, fake: FakeBackend) -> None:
        """An operation the fake does not model is a programming error, not a kernel error."""
        with pytest.raises(TypeError):
            fake.apply(tx(object()))  # type: ignore[arg-type]
