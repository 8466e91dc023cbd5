"""NftablesBackend + planner against the real kernel (each test in a fresh namespace)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from nftwl.errors import TransactionError
from nftwl.model import Action, IPv4Network, PortRange, Proto, WhitelistContent
from nftwl.nftables_backend import NftablesBackend
from nftwl.parsing import parse_sources
from nftwl.planner import plan
from nftwl.ruleset import CHAIN, content_of
from nftwl.transaction import (
    AddElements,
    AddTable,
    DeleteElements,
    FlushChain,
    FlushSet,
    Transaction,
)
from tests.kernel.helpers import (
    REAL_DATA,
    Network,
    Whitelists,
    add_element,
    apply_whitelists,
    delete_element,
    desired,
    list_table,
    list_table_bytes,
    live_family,
    live_networks,
    make_content,
    nft,
    raw_elements,
)

T = "nftwl"
PORTS = ["22/tcp", "8000-8080/tcp", "53", "60000:60010/udp"]

BASE = make_content(
    [
        "10.0.0.1",
        "10.0.0.2",
        "10.1.0.0/16",
        "10.1.2.0/24",  # inside 10.1.0.0/16: collapsed away
        "172.16.0.0/25",
        "172.16.0.128/25",  # adjacent: collapses to 172.16.0.0/24
        "192.168.1.10-192.168.1.20",  # a range: several prefixes
        "2001:db8::1",
        "2001:db8:1::/48",
        "2001:db8:1:2::/64",  # inside the /48
        "::ffff:198.51.100.7",  # IPv4-mapped: an IPv4 host
    ],
    PORTS,
)


def hosts_nets(content: WhitelistContent, version: int) -> tuple[set[Network], set[Network]]:
    nets = content.v4 if version == 4 else content.v6
    return {n for n in nets if n.num_addresses == 1}, {n for n in nets if n.num_addresses > 1}


def replan(backend: NftablesBackend, whitelists: Whitelists) -> Transaction:
    return plan(desired(T, whitelists), backend.read())


def assert_in_sync(backend: NftablesBackend, whitelists: Whitelists) -> None:
    """Re-planning against the live table gives an empty transaction."""
    tx = replan(backend, whitelists)
    assert not tx, tx.render()


def set_ops(tx: Transaction) -> set[type]:
    return {type(op) for op in tx.ops}


@pytest.fixture
def backend() -> NftablesBackend:
    return NftablesBackend(T)


class TestReadBack:
    def test_live_sets_equal_the_normalised_input(self, backend: NftablesBackend) -> None:
        """Every set the kernel holds equals the normalised input, split into hosts and nets."""
        apply_whitelists(backend, {"default": BASE})
        for version in (4, 6):
            hosts, nets = hosts_nets(BASE, version)
            assert live_networks(T, f"default_v{version}_hosts") == hosts
            assert live_networks(T, f"default_v{version}_nets") == nets
        assert IPv4Network("198.51.100.7/32") in live_networks(T, "default_v4_hosts")
        assert IPv4Network("172.16.0.0/24") in live_networks(T, "default_v4_nets")
        live = backend.read()
        assert live is not None
        assert content_of(live, "default") == BASE
        assert live.sets["default_ports"].elements == frozenset(BASE.ports)
        assert PortRange(Proto.UDP, 53, 53) in BASE.ports
        assert all(s.canonical and not s.foreign for s in live.sets.values())
        assert_in_sync(backend, {"default": BASE})

    def test_whole_address_space_round_trips(self, backend: NftablesBackend) -> None:
        """0.0.0.0/0, ::/0 and the full port range read back equal and re-plan to nothing."""
        everything = make_content(["0.0.0.0/0", "::/0"], ["1-65535"])
        apply_whitelists(backend, {"all": everything})
        live = backend.read()
        assert live is not None
        assert content_of(live, "all") == everything
        assert all(s.canonical for s in live.sets.values())
        assert_in_sync(backend, {"all": everything})

    def test_two_whitelists_and_actions(self, backend: NftablesBackend) -> None:
        """Two whitelists with different actions get their own sets and rules."""
        other = make_content(["192.0.2.0/24"], ["443/tcp"])
        wls: Whitelists = {"default": BASE, "web": (other, Action.REJECT)}
        apply_whitelists(backend, wls)
        live = backend.read()
        assert live is not None
        assert content_of(live, "web") == other
        assert content_of(live, "default") == BASE
        assert live.rules == (
            "nftwl/1 established",
            "nftwl/1 default ipv4 drop",
            "nftwl/1 default ipv6 drop",
            "nftwl/1 web ipv4 reject tcp-reset",
            "nftwl/1 web ipv4 reject",
            "nftwl/1 web ipv6 reject tcp-reset",
            "nftwl/1 web ipv6 reject",
        )
        assert_in_sync(backend, wls)

    def test_read_of_a_missing_table_is_none(self, backend: NftablesBackend) -> None:
        """Before the first apply there is no table, and the first plan creates it."""
        assert backend.read() is None
        tx = replan(backend, {"default": BASE})
        assert isinstance(tx.ops[0], AddTable)


class TestDelta:
    def test_one_host_added_is_a_delta(self, backend: NftablesBackend) -> None:
        """Adding one host adds exactly that element to the hosts set, nothing else."""
        apply_whitelists(backend, {"default": BASE})
        before = list_table("inet", T)
        more = WhitelistContent.build([*BASE.v4, IPv4Network("10.0.0.5/32")], BASE.v6, BASE.ports)
        tx = apply_whitelists(backend, {"default": more})
        assert tx.ops == [AddElements("default_v4_hosts", (IPv4Network("10.0.0.5/32"),))]
        assert not any(c.replaced for c in tx.changes.values())
        assert "10.0.0.5" in raw_elements(T, "default_v4_hosts")
        assert_in_sync(backend, {"default": more})
        # Rules and sets were not re-created: same handles.
        after = list_table("inet", T)
        assert [i.get("rule", {}).get("handle") for i in after] == [
            i.get("rule", {}).get("handle") for i in before
        ]

    def test_one_host_removed_is_a_delta(self, backend: NftablesBackend) -> None:
        """Removing one host deletes exactly that element."""
        apply_whitelists(backend, {"default": BASE})
        gone = IPv4Network("10.0.0.1/32")
        less = WhitelistContent.build([n for n in BASE.v4 if n != gone], BASE.v6, BASE.ports)
        tx = apply_whitelists(backend, {"default": less})
        assert tx.ops == [DeleteElements("default_v4_hosts", (gone,))]
        assert not any(c.replaced for c in tx.changes.values())
        assert gone not in live_family(T, "default", 4)
        assert live_family(T, "default", 4) == set(less.v4)
        assert_in_sync(backend, {"default": less})

    def test_small_network_change_is_a_delta(self, backend: NftablesBackend) -> None:
        """One network added to and one removed from a small interval set is a delta."""
        apply_whitelists(backend, {"default": BASE})
        v4 = [n for n in BASE.v4 if n != IPv4Network("10.1.0.0/16")]
        v4.append(IPv4Network("10.2.0.0/16"))
        changed = WhitelistContent.build(v4, BASE.v6, BASE.ports)
        tx = apply_whitelists(backend, {"default": changed})
        assert tx.ops == [
            DeleteElements("default_v4_nets", (IPv4Network("10.1.0.0/16"),)),
            AddElements("default_v4_nets", (IPv4Network("10.2.0.0/16"),)),
        ]
        assert tx.changes["default_v4_nets"].replaced is False
        assert live_family(T, "default", 4) == set(changed.v4)
        assert_in_sync(backend, {"default": changed})

    def test_port_change_is_a_delta(self, backend: NftablesBackend) -> None:
        """Widening a port range changes only the ports set."""
        apply_whitelists(backend, {"default": BASE})
        changed = WhitelistContent.build(
            BASE.v4, BASE.v6, [*BASE.ports, PortRange(Proto.TCP, 8000, 8090)]
        )
        tx = apply_whitelists(backend, {"default": changed})
        assert {op.set for op in tx.ops} == {"default_ports"}  # type: ignore[union-attr]
        live = backend.read()
        assert live is not None
        assert live.sets["default_ports"].elements == frozenset(changed.ports)
        assert_in_sync(backend, {"default": changed})

    def test_big_change_is_a_full_replace(self, backend: NftablesBackend) -> None:
        """Dropping half of a large interval set is planned and applied as flush + refill."""
        nets = [IPv4Network(f"10.{i // 256}.{i % 256}.0/24") for i in range(0, 800, 2)]
        big = WhitelistContent.build(nets, (), BASE.ports)
        apply_whitelists(backend, {"default": big})
        kept = nets[::2]
        # Also a block that overlaps a flushed one (10.0.2.0/24): the refill must not clash
        # with the old content.
        wider = IPv4Network("10.0.2.0/23")
        small = WhitelistContent.build([*kept, wider], (), BASE.ports)
        tx = replan(backend, {"default": small})
        assert tx.changes["default_v4_nets"].replaced is True
        assert FlushSet("default_v4_nets") in tx.ops
        backend.apply(tx)
        assert live_family(T, "default", 4) == set(small.v4)
        assert_in_sync(backend, {"default": small})

    def test_whitelist_removed_deletes_only_its_sets(self, backend: NftablesBackend) -> None:
        """Dropping a whitelist removes its sets and rules; the other one stays as it was."""
        web = make_content(["192.0.2.0/24"], ["443/tcp"])
        apply_whitelists(backend, {"default": BASE, "web": web})
        apply_whitelists(backend, {"default": BASE})
        live = backend.read()
        assert live is not None
        assert not [n for n in live.sets if n.startswith("web_")]
        assert content_of(live, "default") == BASE
        assert_in_sync(backend, {"default": BASE})


class TestRestart:
    def test_same_content_plans_nothing(self, backend: NftablesBackend) -> None:
        """A brand-new backend and plan against an existing, matching table is empty."""
        apply_whitelists(backend, {"default": BASE})
        fresh = NftablesBackend(T)
        tx = plan(desired(T, {"default": BASE}), fresh.read())
        assert not tx, tx.render()

    def test_changed_content_touches_only_the_delta(self, backend: NftablesBackend) -> None:
        """After a restart a changed list is applied as element operations only."""
        apply_whitelists(backend, {"default": BASE})
        before = list_table("inet", T)
        changed = WhitelistContent.build(
            [*BASE.v4, IPv4Network("10.9.9.9/32")],
            [n for n in BASE.v6 if n.num_addresses > 1],
            BASE.ports,
        )
        fresh = NftablesBackend(T)
        tx = plan(desired(T, {"default": changed}), fresh.read())
        assert set_ops(tx) <= {AddElements, DeleteElements}, tx.render()
        assert not tx.rules_rewritten
        assert not any(c.replaced for c in tx.changes.values())
        fresh.apply(tx)
        after = list_table("inet", T)
        # Table, chain, sets and rules keep their handles: nothing was re-created.
        strip = [
            {k: {kk: vv for kk, vv in v.items() if kk != "elem"} for k, v in i.items()}
            for i in before
        ]
        assert strip == [
            {k: {kk: vv for kk, vv in v.items() if kk != "elem"} for k, v in i.items()}
            for i in after
        ]
        assert content_of(fresh.read(), "default") == changed  # type: ignore[arg-type]

    def test_changed_priority_rebuilds_the_chain_only(self, backend: NftablesBackend) -> None:
        """A new chain priority re-creates the chain but leaves every set's content alone."""
        apply_whitelists(backend, {"default": BASE})
        tx = plan(desired(T, {"default": BASE}, priority=10), backend.read())
        assert FlushChain(CHAIN) in tx.ops
        assert not [op for op in tx.ops if isinstance(op, AddElements | DeleteElements)]
        backend.apply(tx)
        chains = [i["chain"] for i in list_table("inet", T) if "chain" in i]
        assert [c["prio"] for c in chains] == [10]
        assert not plan(desired(T, {"default": BASE}, priority=10), backend.read())


class TestAtomicity:
    def test_failing_transaction_leaves_the_previous_state(self, backend: NftablesBackend) -> None:
        """A batch whose last operation fails takes no effect at all, not even its first one."""
        apply_whitelists(backend, {"default": BASE})
        before = list_table_bytes("inet", T)
        tx = Transaction(
            T,
            [
                AddElements("default_v4_hosts", (IPv4Network("10.7.7.7/32"),)),
                FlushSet("default_v4_nets"),
                DeleteElements("default_v4_hosts", (IPv4Network("10.8.8.8/32"),)),
            ],
        )
        with pytest.raises(TransactionError):
            backend.apply(tx)
        assert list_table_bytes("inet", T) == before
        live = backend.read()
        assert live is not None
        assert content_of(live, "default") == BASE

    def test_overlapping_add_is_refused_whole(self, backend: NftablesBackend) -> None:
        """The kernel refuses an overlapping interval, so nftwl must never send one."""
        apply_whitelists(backend, {"default": BASE})
        before = list_table_bytes("inet", T)
        tx = Transaction(
            T,
            [
                AddElements("default_v4_hosts", (IPv4Network("10.7.7.7/32"),)),
                AddElements("default_v4_nets", (IPv4Network("10.1.2.0/24"),)),
            ],
        )
        with pytest.raises(TransactionError):
            backend.apply(tx)
        assert list_table_bytes("inet", T) == before


class TestIsolation:
    def _make_other_tables(self) -> None:
        nft(
            {"add": {"table": {"family": "inet", "name": "other"}}},
            {
                "add": {
                    "set": {
                        "family": "inet",
                        "table": "other",
                        "name": "blocked",
                        "type": "ipv4_addr",
                        "flags": ["interval"],
                        "elem": [{"prefix": {"addr": "10.1.0.0", "len": 16}}, "192.0.2.9"],
                    }
                }
            },
            {
                "add": {
                    "chain": {
                        "family": "inet",
                        "table": "other",
                        "name": "input",
                        "type": "filter",
                        "hook": "input",
                        "prio": -5,
                        "policy": "accept",
                    }
                }
            },
            {
                "add": {
                    "rule": {
                        "family": "inet",
                        "table": "other",
                        "chain": "input",
                        "comment": "not nftwl's",
                        "expr": [
                            {
                                "match": {
                                    "op": "==",
                                    "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                                    "right": "@blocked",
                                }
                            },
                            {"counter": None},
                            {"accept": None},
                        ],
                    }
                }
            },
            # Same table name, other family: must not be mistaken for nftwl's.
            {"add": {"table": {"family": "ip", "name": T}}},
            {
                "add": {
                    "set": {
                        "family": "ip",
                        "table": T,
                        "name": "default_v4_hosts",
                        "type": "ipv4_addr",
                        "elem": ["10.0.0.1", "10.66.0.1"],
                    }
                }
            },
        )

    def test_other_tables_stay_byte_identical(self, backend: NftablesBackend) -> None:
        """Creating, changing, replacing and shrinking nftwl's table never touches others."""
        self._make_other_tables()
        other = list_table_bytes("inet", "other")
        same_name = list_table_bytes("ip", T)
        apply_whitelists(backend, {"default": BASE})
        live = backend.read()
        assert live is not None and "blocked" not in live.sets
        assert live.other_chains == ()
        apply_whitelists(backend, {"default": make_content(["10.0.0.1"], ["22"])})
        apply_whitelists(backend, {"default": BASE, "web": make_content(["10.1.0.0/16"], ["80"])})
        apply_whitelists(backend, {"web": make_content(["192.0.2.9"], ["80"])})
        assert list_table_bytes("inet", "other") == other
        assert list_table_bytes("ip", T) == same_name
        assert_in_sync(backend, {"web": make_content(["192.0.2.9"], ["80"])})


class TestFC08:
    def test_fc08_overlapping_and_duplicate_cidrs(self, backend: NftablesBackend) -> None:
        """FC-08's input applies and the kernel holds exactly 192.0.2.0/24 and 2001:db8::/48."""
        text = "192.0.2.0/24\n192.0.2.1\n2001:db8::/48\n2001:db8::/64\n2001:DB8:0:0::/48\n"
        parsed = parse_sources(text, "allow.txt")
        assert parsed.errors == []
        content = WhitelistContent.build(parsed.v4, parsed.v6, BASE.ports)
        apply_whitelists(backend, {"default": content})
        assert live_family(T, "default", 4) == {IPv4Network("192.0.2.0/24")}
        assert live_family(T, "default", 6) == {ipaddress.ip_network("2001:db8::/48")}
        assert raw_elements(T, "default_v4_hosts") == []
        assert_in_sync(backend, {"default": content})


class TestFC09:
    def test_fc09_hand_deleted_element_then_removed_from_input(
        self, backend: NftablesBackend
    ) -> None:
        """An element an operator already deleted is not deleted again: the apply succeeds."""
        v1 = make_content(["192.0.2.0/25", "203.0.113.7", "2001:db8::7"], ["22"])
        apply_whitelists(backend, {"default": v1})
        delete_element(T, "default_v4_hosts", "203.0.113.7")
        delete_element(T, "default_v6_hosts", "2001:db8::7")
        v2 = make_content(["192.0.2.0/25"], ["22"])
        apply_whitelists(backend, {"default": v2})
        assert live_family(T, "default", 4) == set(v2.v4)
        assert live_family(T, "default", 6) == set()
        assert_in_sync(backend, {"default": v2})

    def test_fc09_hand_deleted_element_still_wanted_is_restored(
        self, backend: NftablesBackend
    ) -> None:
        """Drift is repaired: an element deleted by hand but still in the input comes back."""
        v1 = make_content(["192.0.2.0/25", "203.0.113.7"], ["22"])
        apply_whitelists(backend, {"default": v1})
        delete_element(T, "default_v4_nets", {"prefix": {"addr": "192.0.2.0", "len": 25}})
        tx = apply_whitelists(backend, {"default": v1})
        assert tx.changes["default_v4_nets"].added == 1, tx.render()
        assert live_family(T, "default", 4) == set(v1.v4)

    def test_fc09_shrinking_a_collapsed_block(self, backend: NftablesBackend) -> None:
        """v1 {192.0.2.0/25, 192.0.2.128/25} then v2 {192.0.2.0/25} leaves exactly the /25."""
        v1 = make_content(["192.0.2.0/25", "192.0.2.128/25"], ["22"])
        apply_whitelists(backend, {"default": v1})
        assert live_family(T, "default", 4) == {IPv4Network("192.0.2.0/24")}
        v2 = make_content(["192.0.2.0/25"], ["22"])
        apply_whitelists(backend, {"default": v2})
        assert live_family(T, "default", 4) == {IPv4Network("192.0.2.0/25")}
        nft(
            {
                "add": {
                    "element": {
                        "family": "inet",
                        "table": T,
                        "name": "default_v4_nets",
                        "elem": ["192.0.2.200"],
                    }
                }
            }
        )  # 192.0.2.200 is free again: the kernel accepts it, proving the /24 is gone
        delete_element(T, "default_v4_nets", "192.0.2.200")
        assert_in_sync(backend, {"default": v2})

    def test_fc09_hand_added_range_is_removed(self, backend: NftablesBackend) -> None:
        """A hand-added range makes the set non-canonical; the next apply replaces it whole."""
        v1 = make_content(["192.0.2.0/25", "10.0.0.1"], ["22"])
        apply_whitelists(backend, {"default": v1})
        add_element(T, "default_v4_nets", {"range": ["203.0.113.1", "203.0.113.9"]})
        add_element(T, "default_v4_hosts", "198.51.100.1")
        live = backend.read()
        assert live is not None
        assert live.sets["default_v4_nets"].canonical is False
        tx = replan(backend, {"default": v1})
        assert tx.changes["default_v4_nets"].replaced is True
        assert DeleteElements("default_v4_hosts", (IPv4Network("198.51.100.1/32"),)) in (tx.ops)
        backend.apply(tx)
        assert raw_elements(T, "default_v4_nets") == [{"prefix": {"addr": "192.0.2.0", "len": 25}}]
        assert raw_elements(T, "default_v4_hosts") == ["10.0.0.1"]
        assert_in_sync(backend, {"default": v1})

    def test_fc09_hand_added_range_in_a_big_set_is_removed(self, backend: NftablesBackend) -> None:
        """Even where a delta would be cheaper, a non-canonical set is replaced, not patched."""
        nets = [f"10.{i // 256}.{i % 256}.0/24" for i in range(0, 600, 2)]
        v1 = make_content(nets, ["22"])
        apply_whitelists(backend, {"default": v1})
        add_element(T, "default_v4_nets", {"range": ["203.0.113.1", "203.0.113.9"]})
        tx = replan(backend, {"default": v1})
        assert tx.changes["default_v4_nets"].replaced is True, tx.render()
        backend.apply(tx)
        assert live_family(T, "default", 4) == set(v1.v4)
        assert_in_sync(backend, {"default": v1})

    def test_fc09_merged_range_is_rewritten(self, backend: NftablesBackend) -> None:
        """A live range covering exactly the wanted blocks is rewritten as those blocks."""
        v1 = make_content(["192.0.2.0/25", "192.0.2.128/26"], ["22"])
        apply_whitelists(backend, {"default": v1})
        nft(
            {"flush": {"set": {"family": "inet", "table": T, "name": "default_v4_nets"}}},
            {
                "add": {
                    "element": {
                        "family": "inet",
                        "table": T,
                        "name": "default_v4_nets",
                        "elem": [{"range": ["192.0.2.0", "192.0.2.191"]}],
                    }
                }
            },
        )
        live = backend.read()
        assert live is not None
        assert content_of(live, "default") == v1  # same membership ...
        assert live.sets["default_v4_nets"].canonical is False  # ... but not as nftwl wrote it
        apply_whitelists(backend, {"default": v1})
        assert live_family(T, "default", 4) == set(v1.v4)
        # And the FC-09 follow-up delete of one block now succeeds.
        v2 = make_content(["192.0.2.0/25"], ["22"])
        apply_whitelists(backend, {"default": v2})
        assert live_family(T, "default", 4) == set(v2.v4)

    def test_fc09_hand_added_prefix_is_deleted(self, backend: NftablesBackend) -> None:
        """A canonical element added by hand is removed again by a delta."""
        v1 = make_content(["192.0.2.0/25"], ["22"])
        apply_whitelists(backend, {"default": v1})
        add_element(T, "default_v4_nets", {"prefix": {"addr": "198.51.100.0", "len": 24}})
        add_element(T, "default_ports", {"concat": ["tcp", 443]})
        apply_whitelists(backend, {"default": v1})
        assert live_family(T, "default", 4) == set(v1.v4)
        assert raw_elements(T, "default_ports") == [
            {"concat": ["tcp", 22]},
            {"concat": ["udp", 22]},
        ]


REAL_FILES = sorted(p.name for p in REAL_DATA.iterdir()) if REAL_DATA.is_dir() else []


class TestFC17:
    def test_fc17_real_data_present(self) -> None:
        """The real published lists are where the tests expect them."""
        assert "cloud-aws.txt" in REAL_FILES, REAL_DATA

    @pytest.mark.parametrize("name", REAL_FILES)
    def test_fc17_real_list_applies_exactly(self, backend: NftablesBackend, name: str) -> None:
        """A real published list applies and the kernel holds exactly its collapsed ranges."""
        path: Path = REAL_DATA / name
        parsed = parse_sources(path.read_text(encoding="utf-8"), str(path))
        assert parsed.errors == []
        assert parsed.v4 or parsed.v6
        content = WhitelistContent.build(parsed.v4, parsed.v6, [PortRange(Proto.TCP, 443, 443)])
        apply_whitelists(backend, {"default": content})
        assert live_family(T, "default", 4) == set(ipaddress.collapse_addresses(parsed.v4))
        assert live_family(T, "default", 6) == set(ipaddress.collapse_addresses(parsed.v6))
        assert_in_sync(backend, {"default": content})
