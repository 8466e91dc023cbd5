"""The pure planner (nftwl.planner), checked by applying its plans to the kernel-like fake."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pytest

from nftwl.costs import DEFAULT_COSTS, CostModel
from nftwl.errors import TransactionError
from nftwl.fake import FakeBackend
from nftwl.model import Action, IPv4Network, IPv6Network, PortRange, Proto, WhitelistContent
from nftwl.parsing import parse_ports, parse_sources
from nftwl.planner import plan
from nftwl.ruleset import CHAIN, ChainSpec, RuleSpec, SetKind, SetSpec, SetState, TableState
from nftwl.ruleset import desired_table as build_table
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
    SetChange,
    Transaction,
)

TCP, UDP = Proto.TCP, Proto.UDP
FORCE_DELTA = CostModel(fetch_base=0.0, fetch_growth=0.0, delete_base=0.0, delete_growth=0.0)
"""Replacing costs one add per wanted element, a delta one per added element: never cheaper."""
FORCE_REPLACE = CostModel(fetch_base=1e9)
"""Any delta to a non-trivial interval set costs more than a replace (which costs 1)."""


def content(sources: str = "", ports: str = "22/tcp") -> WhitelistContent:
    """Content from whitelist text, through the real parser (which must accept it)."""
    s, p = parse_sources(sources, "allow.txt"), parse_ports(ports, "ports.txt")
    assert s.errors == [] and p.errors == []
    return WhitelistContent.build(s.v4, s.v6, p.ports)


def table(
    whitelists: dict[str, WhitelistContent],
    priority: int = 0,
    action: Action = Action.DROP,
) -> TableState:
    return build_table("nftwl", {n: (c, action) for n, c in whitelists.items()}, priority)


def steps(
    fake: FakeBackend, want: TableState, costs: CostModel = DEFAULT_COSTS
) -> list[Transaction]:
    """Plan against the fake's live state and apply, re-planning after a partial (bridge) step
    as the reconciler does; the fake raises if a plan is unsound. Every transaction applied."""
    done: list[Transaction] = []
    while True:
        tx = plan(want, fake.read(), costs)
        fake.apply(tx)
        done.append(tx)
        if not getattr(tx, "partial", False):
            return done
        assert len(done) < 4, "the planner does not converge"


def apply(fake: FakeBackend, want: TableState, costs: CostModel = DEFAULT_COSTS) -> Transaction:
    """Bring the fake to ``want``; the last (complete) transaction it took."""
    return steps(fake, want, costs)[-1]


def assert_live_is(fake: FakeBackend, want: TableState) -> None:
    """The fake holds exactly the desired table, and a fresh plan has nothing left to do."""
    live = fake.read()
    assert live is not None
    assert live.chain == want.chain
    assert live.rules == want.rules
    assert fake.chain_rules == {CHAIN: list(want.rule_specs)}
    assert {n: (s.spec, s.elements) for n, s in live.sets.items()} == {
        n: (s.spec, s.elements) for n, s in want.sets.items()
    }
    assert live.other_chains == ()
    again = plan(want, live)
    assert not again, again.render()


def ops_on(tx: Transaction, name: str) -> list[Op]:
    """The operations of ``tx`` that touch the set ``name``."""
    return [op for op in tx.ops if getattr(op, "set", None) == name]


def index(tx: Transaction, op: Op) -> int:
    return tx.ops.index(op)


def spaced_networks(count: int) -> str:
    """``count`` non-adjacent /24s (they never collapse), one per line."""
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    return "\n".join(f"{ipaddress.IPv4Address(base + i * 512)}/24" for i in range(count))


BASIC = content("192.0.2.7\n198.51.100.0/24\n2001:db8::1\n2001:db8:1::/48\n", "22/tcp\n53")


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend()


class TestFirstApply:
    def test_creates_table_sets_chain_and_rules(self, fake: FakeBackend) -> None:
        """Against no table, the plan creates the table, every set with content, chain and rules."""
        want = table({"default": BASIC})
        tx = plan(want, None)
        assert tx.ops[0] == AddTable()
        added_sets = {op.spec.name for op in tx.ops if isinstance(op, AddSet)}
        assert added_sets == {
            "default_v4_hosts",
            "default_v4_nets",
            "default_v6_hosts",
            "default_v6_nets",
            "default_ports",
        }
        assert AddChain(ChainSpec()) in tx.ops
        assert [op.rule for op in tx.ops if isinstance(op, AddRule)] == [
            RuleSpec(),
            RuleSpec("default", "ipv4"),
            RuleSpec("default", "ipv6"),
        ]
        assert not any(isinstance(op, DeleteSet | DeleteElements | FlushSet) for op in tx.ops)
        assert tx.rules_rewritten
        fake.apply(tx)
        assert_live_is(fake, want)

    def test_hosts_and_networks_go_to_their_own_sets(self, fake: FakeBackend) -> None:
        """Single addresses land in the hash sets, networks in the interval sets, per family."""
        apply(fake, table({"default": BASIC}))
        sets = fake.state.sets  # type: ignore[union-attr]
        assert sets["default_v4_hosts"].elements == {IPv4Network("192.0.2.7/32")}
        assert sets["default_v4_nets"].elements == {IPv4Network("198.51.100.0/24")}
        assert sets["default_v6_hosts"].elements == {IPv6Network("2001:db8::1/128")}
        assert sets["default_v6_nets"].elements == {IPv6Network("2001:db8:1::/48")}
        assert sets["default_ports"].elements == {
            PortRange(TCP, 22, 22),
            PortRange(TCP, 53, 53),
            PortRange(UDP, 53, 53),
        }
        assert not sets["default_v4_hosts"].spec.kind.interval
        assert sets["default_v4_nets"].spec.kind.interval

    def test_sets_exist_before_the_rules_that_use_them(self) -> None:
        """Every AddSet comes before the first AddRule that refers to it."""
        tx = plan(table({"a": BASIC, "b": BASIC}), None)
        first_rule = min(i for i, op in enumerate(tx.ops) if isinstance(op, AddRule))
        assert all(i < first_rule for i, op in enumerate(tx.ops) if isinstance(op, AddSet))

    def test_elements_are_added_in_sorted_order(self) -> None:
        """Element lists in a plan are sorted, so plans are reproducible whatever the order."""
        c = content("203.0.113.0/24\n192.0.2.0/24\n198.51.100.0/24\n")
        tx = plan(table({"default": c}), None)
        (add,) = [op for op in ops_on(tx, "default_v4_nets") if isinstance(op, AddElements)]
        assert [str(e) for e in add.elements] == [
            "192.0.2.0/24",
            "198.51.100.0/24",
            "203.0.113.0/24",
        ]

    def test_empty_table_gets_only_the_established_rule(self, fake: FakeBackend) -> None:
        """With no whitelist in force, the table holds the chain and its established rule only."""
        want = table({})
        apply(fake, want)
        assert_live_is(fake, want)
        assert fake.chain_rules[CHAIN] == [RuleSpec()]


class TestNoOp:
    def test_replanning_after_apply_is_empty(self, fake: FakeBackend) -> None:
        """Once the plan is applied, planning the same desired state yields an empty transaction."""
        want = table({"default": BASIC, "other": content("203.0.113.0/24", "443")})
        apply(fake, want)
        writes = fake.writes
        tx = apply(fake, want)
        assert not tx
        assert tx.ops == []
        assert tx.describe() == "no change"
        assert fake.writes == writes

    def test_equal_content_from_different_spellings_is_a_no_op(self, fake: FakeBackend) -> None:
        """Input that collapses to the same content as what is live plans nothing."""
        apply(fake, table({"default": content("192.0.2.0/24\n", "22/tcp")}))
        same = content("192.0.2.0/25\n192.0.2.128/25\n192.0.2.9\n", "22/TCP\n22/tcp")
        assert not plan(table({"default": same}), fake.read())


class TestHashSetDeltas:
    def test_adds_and_deletes_only_the_difference(self, fake: FakeBackend) -> None:
        """A changed hash set gets a delete of the removed and an add of the new elements."""
        apply(fake, table({"default": content("192.0.2.1\n192.0.2.2\n192.0.2.3\n")}))
        want = table({"default": content("192.0.2.2\n192.0.2.3\n192.0.2.4\n")})
        tx = apply(fake, want)
        assert ops_on(tx, "default_v4_hosts") == [
            DeleteElements("default_v4_hosts", (IPv4Network("192.0.2.1/32"),)),
            AddElements("default_v4_hosts", (IPv4Network("192.0.2.4/32"),)),
        ]
        assert tx.changes == {"default_v4_hosts": SetChange(added=1, removed=1)}
        assert not tx.rules_rewritten
        assert_live_is(fake, want)

    def test_untouched_sets_and_rules_are_not_in_the_plan(self, fake: FakeBackend) -> None:
        """Only the changed set appears in the transaction; rules and other sets are left alone."""
        apply(fake, table({"default": BASIC}))
        changed = content(
            "192.0.2.7\n192.0.2.8\n198.51.100.0/24\n2001:db8::1\n2001:db8:1::/48\n", "22/tcp\n53"
        )
        tx = apply(fake, table({"default": changed}))
        assert tx.ops == [AddElements("default_v4_hosts", (IPv4Network("192.0.2.8/32"),))]

    def test_ipv6_host_delta(self, fake: FakeBackend) -> None:
        """IPv6 hosts change by delta in their own set, never touching IPv4."""
        apply(fake, table({"default": content("2001:db8::1\n2001:db8::5\n192.0.2.1\n")}))
        want = table({"default": content("2001:db8::5\n2001:db8::9\n192.0.2.1\n")})
        tx = apply(fake, want)
        assert {getattr(op, "set", None) for op in tx.ops} == {"default_v6_hosts"}
        assert_live_is(fake, want)

    @pytest.mark.parametrize(
        ("before", "after", "kept"),
        [
            ("192.0.2.1\n", "192.0.2.1\n192.0.2.0/24\n", "192.0.2.1"),
            ("192.0.2.0/24\n", "192.0.2.1\n", "192.0.2.1"),
            ("2001:db8::1\n", "2001:db8::/64\n", "2001:db8::1"),
        ],
        ids=["host-into-network", "network-to-host", "v6-host-into-network"],
    )
    def test_address_moving_between_hosts_and_nets(
        self, fake: FakeBackend, before: str, after: str, kept: str
    ) -> None:
        """An address that moves between the hash and the interval set ends up in the right
        one, and stays allowed after every transaction on the way."""
        apply(fake, table({"default": content(before)}))
        want = table({"default": content(after)})
        address = ipaddress.ip_address(kept)
        for tx in steps(fake, want):
            live = fake.read()
            assert live is not None
            assert any(
                address in e
                for s in live.sets.values()
                for e in s.elements
                if not isinstance(e, PortRange)
            ), tx.render()
        assert_live_is(fake, want)


class TestIntervalSets:
    def test_small_delta_when_cheaper(self, fake: FakeBackend) -> None:
        """With a cost model where deltas are cheap, an interval set gets deletes and adds only."""
        apply(fake, table({"default": content(spaced_networks(20))}))
        text = spaced_networks(20).replace("10.0.2.0/24\n", "") + "\n203.0.113.0/24"
        want = table({"default": content(text)})
        tx = apply(fake, want, FORCE_DELTA)
        assert ops_on(tx, "default_v4_nets") == [
            DeleteElements("default_v4_nets", (IPv4Network("10.0.2.0/24"),)),
            AddElements("default_v4_nets", (IPv4Network("203.0.113.0/24"),)),
        ]
        assert tx.changes["default_v4_nets"] == SetChange(added=1, removed=1, replaced=False)
        assert_live_is(fake, want)

    def test_full_replace_when_cheaper(self, fake: FakeBackend) -> None:
        """With a cost model where deltas are dear, the interval set is flushed and refilled."""
        apply(fake, table({"default": content(spaced_networks(20))}))
        text = spaced_networks(20).replace("10.0.2.0/24\n", "") + "\n203.0.113.0/24"
        want = table({"default": content(text)})
        tx = apply(fake, want, FORCE_REPLACE)
        (flush, refill) = ops_on(tx, "default_v4_nets")
        assert flush == FlushSet("default_v4_nets")
        assert isinstance(refill, AddElements)
        assert set(refill.elements) == want.sets["default_v4_nets"].elements
        assert tx.changes["default_v4_nets"] == SetChange(added=1, removed=1, replaced=True)
        assert_live_is(fake, want)

    def test_replace_to_empty_flushes_without_adding(self, fake: FakeBackend) -> None:
        """Replacing with no wanted elements is a bare flush (no empty add element)."""
        apply(fake, table({"default": content("192.0.2.0/24\n198.51.100.0/24\n203.0.113.9")}))
        want = table({"default": content("203.0.113.9")})
        tx = apply(fake, want, FORCE_REPLACE)
        assert ops_on(tx, "default_v4_nets") == [FlushSet("default_v4_nets")]
        assert_live_is(fake, want)

    @pytest.mark.parametrize(
        "costs", [FORCE_DELTA, FORCE_REPLACE, DEFAULT_COSTS], ids=["delta", "replace", "default"]
    )
    def test_24_becoming_part_of_a_23(self, fake: FakeBackend, costs: CostModel) -> None:
        """192.0.3.0/24 -> 192.0.2.0/23 applies in one batch (old block out before the new one)."""
        apply(fake, table({"default": content("192.0.3.0/24\n198.51.100.0/24")}))
        want = table({"default": content("192.0.2.0/23\n198.51.100.0/24")})
        tx = apply(fake, want, costs)
        if costs is FORCE_DELTA:
            delete = DeleteElements("default_v4_nets", (IPv4Network("192.0.3.0/24"),))
            add = AddElements("default_v4_nets", (IPv4Network("192.0.2.0/23"),))
            assert index(tx, delete) < index(tx, add)
        assert_live_is(fake, want)

    def test_port_set_delta_with_overlapping_replacement(self, fake: FakeBackend) -> None:
        """A port range widened over an existing one (80-90 -> 80-100) applies cleanly."""
        apply(fake, table({"default": content("192.0.2.1", "80-90/tcp\n443/tcp")}))
        want = table({"default": content("192.0.2.1", "80-100/tcp\n443/tcp")})
        tx = apply(fake, want, FORCE_DELTA)
        assert ops_on(tx, "default_ports") == [
            DeleteElements("default_ports", (PortRange(TCP, 80, 90),)),
            AddElements("default_ports", (PortRange(TCP, 80, 100),)),
        ]
        assert_live_is(fake, want)


BIG = 10_000


@pytest.fixture(scope="module")
def big() -> tuple[TableState, list[str]]:
    """A live table whose v4 interval set holds BIG blocks, and the lines that made it."""
    text = spaced_networks(BIG)
    return table({"default": content(text)}), text.splitlines()


class TestCostCrossover:
    """The default cost model on large interval sets (libnftables 1.0.6's weak spot).

    bench/RESULTS.md measured where a delta of k deletes + k adds stops being cheaper than a
    full replace: after 16 at 1k blocks, 8 at 5k-20k, 4 at 50k, 2 at 100k.
    """

    LIVE = BIG

    @staticmethod
    def _churn(live: TableState, lines: list[str], k: int) -> list[Op]:
        """Plan k deletes and k adds against ``live``; the ops on its v4 interval set."""
        extra = [f"172.16.{2 * i}.0/24" for i in range(k)]
        tx = plan(table({"default": content("\n".join(lines[k:] + extra))}), live)
        return ops_on(tx, "default_v4_nets")

    def test_one_add_is_a_delta(self, big: tuple[TableState, list[str]]) -> None:
        """Adding one block to a large interval set is cheaper as a delta than a reload."""
        live, lines = big
        tx = plan(table({"default": content("\n".join([*lines, "203.0.113.0/24"]))}), live)
        assert ops_on(tx, "default_v4_nets") == [
            AddElements("default_v4_nets", (IPv4Network("203.0.113.0/24"),))
        ]

    def test_one_delete_is_a_delta(self, big: tuple[TableState, list[str]]) -> None:
        """Deleting one block from a large interval set is still cheaper as a delta."""
        live, lines = big
        tx = plan(table({"default": content("\n".join(lines[1:]))}), live)
        assert ops_on(tx, "default_v4_nets") == [
            DeleteElements("default_v4_nets", (IPv4Network(lines[0]),))
        ]

    @pytest.mark.parametrize("k", [1, 4, 8])
    def test_few_changes_are_a_delta(self, big: tuple[TableState, list[str]], k: int) -> None:
        """Up to 8 deletes + 8 adds on a large interval set, the planner patches it."""
        ops = self._churn(*big, k)
        assert [type(op) for op in ops] == [DeleteElements, AddElements]
        assert (len(ops[0].elements), len(ops[1].elements)) == (k, k)  # type: ignore[union-attr]

    @pytest.mark.parametrize("k", [16, 32])
    def test_a_handful_more_is_a_replace(self, big: tuple[TableState, list[str]], k: int) -> None:
        """From 16 deletes + 16 adds on, the interval set is flushed and refilled instead."""
        ops = self._churn(*big, k)
        assert ops[0] == FlushSet("default_v4_nets")
        assert isinstance(ops[1], AddElements) and len(ops[1].elements) == self.LIVE
        assert len(ops) == 2

    def test_deletes_alone_reach_the_crossover_too(self, big: tuple[TableState, list[str]]) -> None:
        """32 deletes without any add also make a replace cheaper than the delta."""
        live, lines = big
        tx = plan(table({"default": content("\n".join(lines[32:]))}), live)
        assert ops_on(tx, "default_v4_nets")[0] == FlushSet("default_v4_nets")
        assert tx.changes["default_v4_nets"] == SetChange(added=0, removed=32, replaced=True)
        assert "default_v4_nets +0 -32 (full replace)" in tx.describe()

    @pytest.mark.parametrize(
        ("n", "delta_wins", "replace_wins"),
        [(1000, 16, 32), (5000, 8, 16), (20_000, 8, 16), (50_000, 4, 8), (100_000, 2, 4)],
    )
    def test_crossover_matches_the_benchmark(
        self, n: int, delta_wins: int, replace_wins: int
    ) -> None:
        """At every benchmarked size (bench/RESULTS.md) the model picks what was measured to be
        cheaper on both sides of the crossover: delta at ``delta_wins`` deletes + adds, replace
        at ``replace_wins``."""
        assert not DEFAULT_COSTS.prefer_replace(True, n, n, delta_wins, delta_wins)
        assert DEFAULT_COSTS.prefer_replace(True, n, n, replace_wins, replace_wins)

    def test_hash_sets_take_deltas_of_the_same_size(self) -> None:
        """The same churn on a hash set of the same size stays a delta."""
        assert not DEFAULT_COSTS.prefer_replace(False, self.LIVE, self.LIVE, 32, 32)


class TestStructure:
    def test_renamed_whitelist_old_sets_deleted_after_rules_rewritten(
        self, fake: FakeBackend
    ) -> None:
        """Renaming a whitelist rewrites the rules first, then deletes the now unused old sets."""
        apply(fake, table({"web": BASIC}))
        want = table({"api": BASIC})
        tx = apply(fake, want)  # the fake refuses deleting a set a rule still uses
        deletes = [i for i, op in enumerate(tx.ops) if isinstance(op, DeleteSet)]
        last_rule = max(i for i, op in enumerate(tx.ops) if isinstance(op, AddRule))
        assert index(tx, FlushChain(CHAIN)) < min(deletes)
        assert last_rule < min(deletes)
        assert {tx.ops[i].set for i in deletes} == {  # type: ignore[union-attr]
            "web_v4_hosts",
            "web_v4_nets",
            "web_v6_hosts",
            "web_v6_nets",
            "web_ports",
        }
        assert tx.changes["web_v4_hosts"] == SetChange(removed=1)
        assert_live_is(fake, want)

    def test_removed_whitelist_leaves_the_others_alone(self, fake: FakeBackend) -> None:
        """Dropping one of two whitelists deletes its sets and keeps the other's content as is."""
        apply(fake, table({"a": BASIC, "b": content("203.0.113.5", "443/tcp")}))
        want = table({"a": BASIC})
        tx = apply(fake, want)
        assert not any(isinstance(op, AddElements | DeleteElements) for op in tx.ops)
        assert_live_is(fake, want)

    def test_chain_priority_change_recreates_the_chain(self, fake: FakeBackend) -> None:
        """A new priority deletes and re-adds the base chain with its rules; sets stay untouched."""
        apply(fake, table({"default": BASIC}))
        want = table({"default": BASIC}, priority=-10)
        tx = apply(fake, want)
        assert tx.ops[:3] == [
            FlushChain(CHAIN),
            DeleteChain(CHAIN),
            AddChain(ChainSpec(priority=-10)),
        ]
        assert not any(
            isinstance(op, AddElements | DeleteElements | FlushSet | DeleteSet) for op in tx.ops
        )
        assert fake.read().chain == ChainSpec(priority=-10)  # type: ignore[union-attr]
        assert_live_is(fake, want)

    def test_action_change_rewrites_rules_only(self, fake: FakeBackend) -> None:
        """drop -> reject rewrites the rules in place (flush, add) and leaves every set alone."""
        apply(fake, table({"default": BASIC}))
        want = table({"default": BASIC}, action=Action.REJECT)
        tx = apply(fake, want)
        assert tx.ops[0] == FlushChain(CHAIN)
        assert DeleteChain(CHAIN) not in tx.ops
        assert all(isinstance(op, FlushChain | AddRule) for op in tx.ops)
        assert_live_is(fake, want)

    def test_stray_chain_is_removed(self, fake: FakeBackend) -> None:
        """A hand-made chain in nftwl's table (even one using its sets) is flushed and deleted."""
        want = table({"default": BASIC})
        apply(fake, want)
        fake.chain_rules["stray"] = [RuleSpec("default", "ipv4")]
        fake.state.other_chains = ("stray",)  # type: ignore[union-attr]
        tx = apply(fake, want)
        assert tx.ops == [FlushChain("stray"), DeleteChain("stray")]
        assert_live_is(fake, want)

    def test_stray_chain_using_an_obsolete_set_goes_first(self, fake: FakeBackend) -> None:
        """A stray chain referring to sets about to be deleted is emptied before they go."""
        apply(fake, table({"old": BASIC}))
        fake.chain_rules["stray"] = [RuleSpec("old", "ipv6")]
        fake.state.other_chains = ("stray",)  # type: ignore[union-attr]
        want = table({"new": BASIC})
        apply(fake, want)
        assert_live_is(fake, want)

    def test_foreign_and_duplicate_rules_are_replaced(self, fake: FakeBackend) -> None:
        """A hand-added or duplicated rule in nftwl's chain makes the planner rewrite the rules."""

        @dataclass(frozen=True)
        class HandAddedRule:
            comment: str | None = None
            whitelist: str | None = None

        want = table({"default": BASIC})
        apply(fake, want)
        fake.chain_rules[CHAIN].insert(1, HandAddedRule())  # type: ignore[arg-type]
        fake.chain_rules[CHAIN].append(RuleSpec("default", "ipv4"))
        tx = apply(fake, want)
        assert tx.rules_rewritten
        assert tx.ops[0] == FlushChain(CHAIN)
        assert_live_is(fake, want)

    def test_stray_set_in_the_table_is_deleted(self, fake: FakeBackend) -> None:
        """A set nftwl would not create (hand-made, or from an old version) is removed."""
        want = table({"default": BASIC})
        apply(fake, want)
        fake.state.sets["manual"] = SetState(SetSpec("manual", SetKind.V4_HOSTS))  # type: ignore[union-attr]
        tx = apply(fake, want)
        assert tx.ops == [DeleteSet("manual")]
        assert_live_is(fake, want)

    @pytest.mark.parametrize("how", ["wrong-kind", "foreign"])
    def test_set_of_the_wrong_type_is_recreated(self, fake: FakeBackend, how: str) -> None:
        """A live set whose type differs from nftwl's is deleted (after the rules) and refilled."""
        want = table({"default": BASIC})
        apply(fake, want)
        live_set = fake.state.sets["default_v4_nets"]  # type: ignore[union-attr]
        if how == "foreign":
            live_set.foreign = True
        else:
            live_set.spec = SetSpec("default_v4_nets", SetKind.V4_HOSTS)
            live_set.elements = frozenset()
        tx = apply(fake, want)
        assert index(tx, FlushChain(CHAIN)) < index(tx, DeleteSet("default_v4_nets"))
        assert index(tx, DeleteSet("default_v4_nets")) < index(
            tx, AddSet(SetSpec("default_v4_nets", SetKind.V4_NETS))
        )
        assert_live_is(fake, want)

    def test_non_canonical_live_set_is_replaced_whole(self, fake: FakeBackend) -> None:
        """A live set holding elements nftwl would not write is flushed and refilled whole."""
        want = table({"default": BASIC})
        apply(fake, want)
        fake.state.sets["default_v4_nets"].canonical = False  # type: ignore[union-attr]
        tx = apply(fake, want)
        assert ops_on(tx, "default_v4_nets") == [
            FlushSet("default_v4_nets"),
            AddElements("default_v4_nets", (IPv4Network("198.51.100.0/24"),)),
        ]
        assert tx.changes["default_v4_nets"].replaced
        assert_live_is(fake, want)

    def test_missing_table_is_recreated_from_scratch(self, fake: FakeBackend) -> None:
        """If someone deleted the whole table, the next plan rebuilds it completely."""
        want = table({"default": BASIC})
        apply(fake, want)
        fake.state, fake.chain_rules = None, {}
        tx = apply(fake, want)
        assert tx.ops[0] == AddTable()
        assert_live_is(fake, want)


class TestDrift:
    def test_fc09_element_deleted_by_hand_then_removed_from_input(self, fake: FakeBackend) -> None:
        """FC-09: removing an entry already deleted out of band is a no-op, not a failing delete."""
        apply(fake, table({"default": content("192.0.2.10\n203.0.113.7\n198.51.100.0/24")}))
        hosts = fake.state.sets["default_v4_hosts"]  # type: ignore[union-attr]
        hosts.elements = hosts.elements - {IPv4Network("203.0.113.7/32")}
        want = table({"default": content("192.0.2.10\n198.51.100.0/24")})
        tx = apply(fake, want)  # the fake raises 'No such file' on a delete of a missing element
        for op in tx.ops:
            if isinstance(op, DeleteElements):
                assert IPv4Network("203.0.113.7/32") not in op.elements
        assert_live_is(fake, want)

    @pytest.mark.parametrize("costs", [FORCE_DELTA, FORCE_REPLACE], ids=["delta", "replace"])
    def test_fc09_network_deleted_by_hand_then_removed_from_input(
        self, fake: FakeBackend, costs: CostModel
    ) -> None:
        """FC-09: the same holds for an interval set, whichever way the planner updates it."""
        apply(fake, table({"default": content("192.0.2.0/24\n203.0.113.0/24\n198.51.100.0/24")}))
        nets = fake.state.sets["default_v4_nets"]  # type: ignore[union-attr]
        nets.elements = nets.elements - {IPv4Network("203.0.113.0/24")}
        want = table({"default": content("192.0.2.0/24\n198.51.100.0/24")})
        apply(fake, want, costs)
        assert_live_is(fake, want)

    @pytest.mark.parametrize(
        "costs", [FORCE_DELTA, FORCE_REPLACE, DEFAULT_COSTS], ids=["delta", "replace", "default"]
    )
    def test_fc09_two_halves_then_one_half(self, fake: FakeBackend, costs: CostModel) -> None:
        """FC-09: v1 {.0/25, .128/25} (collapsed to a /24) then v2 {.0/25} leaves exactly .0/25."""
        v1 = table({"default": content("192.0.2.0/25\n192.0.2.128/25\n")})
        assert v1.sets["default_v4_nets"].elements == {IPv4Network("192.0.2.0/24")}
        apply(fake, v1)
        v2 = table({"default": content("192.0.2.0/25\n")})
        apply(fake, v2, costs)
        live = fake.read()
        assert live is not None
        assert live.sets["default_v4_nets"].elements == {IPv4Network("192.0.2.0/25")}
        assert live.sets["default_v4_hosts"].elements == frozenset()
        outsider = ipaddress.ip_address("192.0.2.200")
        assert not any(
            outsider in n
            for s in live.sets.values()
            for n in s.elements
            if not isinstance(n, PortRange)
        )
        assert_live_is(fake, v2)

    def test_fc09_element_added_by_hand_is_removed(self, fake: FakeBackend) -> None:
        """FC-09: an element someone added by hand is deleted, since deltas use the live state."""
        want = table({"default": BASIC})
        apply(fake, want)
        hosts = fake.state.sets["default_v4_hosts"]  # type: ignore[union-attr]
        hosts.elements = hosts.elements | {IPv4Network("203.0.113.66/32")}
        tx = apply(fake, want)
        assert tx.ops == [DeleteElements("default_v4_hosts", (IPv4Network("203.0.113.66/32"),))]
        assert_live_is(fake, want)

    def test_fc09_plan_from_a_stale_view_is_refused_whole(self, fake: FakeBackend) -> None:
        """FC-09: a plan computed from a cached view fails as a whole and changes nothing."""
        apply(fake, table({"default": content("192.0.2.10\n203.0.113.7")}))
        stale = fake.read()
        hosts = fake.state.sets["default_v4_hosts"]  # type: ignore[union-attr]
        hosts.elements = hosts.elements - {IPv4Network("203.0.113.7/32")}
        before = fake.read()
        tx = plan(table({"default": content("192.0.2.10")}), stale, FORCE_DELTA)
        with pytest.raises(TransactionError, match="No such file or directory"):
            fake.apply(tx)
        assert fake.read() == before


def test_fc08_overlapping_input_applies_to_interval_sets(fake: FakeBackend) -> None:
    """FC-08: the overlapping list applies (the raw lines would be refused by an interval set)."""
    text = "192.0.2.0/24\n192.0.2.1\n2001:db8::/48\n2001:db8::/64\n2001:DB8:0:0::/48\n"
    parsed = parse_sources(text, "allow.txt")
    want = table({"default": content(text)})
    apply(fake, want)
    assert_live_is(fake, want)
    live = fake.read()
    assert live is not None
    assert live.sets["default_v4_nets"].elements == {IPv4Network("192.0.2.0/24")}
    assert live.sets["default_v4_hosts"].elements == frozenset()
    assert live.sets["default_v6_nets"].elements == {IPv6Network("2001:db8::/48")}
    # The kernel-like fake would refuse the uncollapsed lines, which is what FC-08 is about.
    raw = Transaction("nftwl", [AddElements("default_v6_nets", tuple(parsed.v6))])
    with pytest.raises(TransactionError, match="conflicting intervals"):
        FakeBackend(state=fake.read(), chain_rules={CHAIN: []}).apply(
            Transaction("nftwl", [FlushSet("default_v6_nets"), *raw.ops])
        )
