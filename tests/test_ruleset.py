"""nftwl's kernel objects as data, and how whitelists map onto them (nftwl.ruleset)."""

from __future__ import annotations

import pytest

from nftwl.model import Action, IPv4Network, IPv6Network, WhitelistContent
from nftwl.ruleset import (
    CHAIN,
    RULE_TAG,
    ChainSpec,
    RuleSpec,
    SetKind,
    SetSpec,
    SetState,
    TableState,
    content_of,
    desired_table,
    split_hosts,
    whitelists_in,
)

WEB = WhitelistContent.from_json(
    {
        "v4": ["192.0.2.7", "198.51.100.0/24"],
        "v6": ["2001:db8::1", "2001:db8:1::/48"],
        "ports": ["443/tcp", "8000-8080/udp"],
    }
)


class TestSetKind:
    @pytest.mark.parametrize(
        ("kind", "key_type", "interval"),
        [
            (SetKind.V4_HOSTS, "ipv4_addr", False),
            (SetKind.V4_NETS, "ipv4_addr", True),
            (SetKind.V6_HOSTS, "ipv6_addr", False),
            (SetKind.V6_NETS, "ipv6_addr", True),
            (SetKind.PORTS, "inet_proto . inet_service", True),
        ],
    )
    def test_kinds(self, kind: SetKind, key_type: str, interval: bool) -> None:
        """Hosts go to hash sets, networks and ports to interval sets, each with its key type."""
        assert (kind.key_type, kind.interval) == (key_type, interval)


class TestRuleSpec:
    def test_comments_name_tag_whitelist_family_and_action(self) -> None:
        """Rule comments carry the version tag, and for guards the whitelist, family and action."""
        assert RuleSpec().comment == f"{RULE_TAG} established"
        assert RuleSpec("web", "ipv6", Action.REJECT).comment == f"{RULE_TAG} web ipv6 reject"

    def test_set_names_per_family(self) -> None:
        """A guard rule refers to its family's hosts and nets sets and the shared ports set."""
        assert RuleSpec("web", "ipv4").set_names() == ("web_v4_hosts", "web_v4_nets", "web_ports")
        assert RuleSpec("web", "ipv6").set_names() == ("web_v6_hosts", "web_v6_nets", "web_ports")


class TestSplitHosts:
    def test_single_addresses_are_hosts(self) -> None:
        """/32 and /128 blocks are hosts; everything wider is a network, per input order."""
        nets = [
            IPv4Network("192.0.2.1/32"),
            IPv4Network("192.0.2.2/31"),
            IPv6Network("2001:db8::1/128"),
            IPv6Network("::/0"),
        ]
        hosts, networks = split_hosts(nets)
        assert hosts == [IPv4Network("192.0.2.1/32"), IPv6Network("2001:db8::1/128")]
        assert networks == [IPv4Network("192.0.2.2/31"), IPv6Network("::/0")]


class TestDesiredTable:
    def test_sets_per_whitelist(self) -> None:
        """Each whitelist gets five sets named <name>_<kind>, holding its split content."""
        t = desired_table("nftwl", {"web": (WEB, Action.DROP)})
        assert t.name == "nftwl"
        assert {n: s.spec.kind for n, s in t.sets.items()} == {
            "web_v4_hosts": SetKind.V4_HOSTS,
            "web_v4_nets": SetKind.V4_NETS,
            "web_v6_hosts": SetKind.V6_HOSTS,
            "web_v6_nets": SetKind.V6_NETS,
            "web_ports": SetKind.PORTS,
        }
        assert t.sets["web_v4_hosts"].elements == {IPv4Network("192.0.2.7/32")}
        assert t.sets["web_v6_nets"].elements == {IPv6Network("2001:db8:1::/48")}
        assert t.sets["web_ports"].elements == frozenset(WEB.ports)

    def test_rules_established_first_then_guards_sorted_by_whitelist(self) -> None:
        """Rules: established first, then ipv4 and ipv6 guards per whitelist in name order;
        a reject whitelist answers TCP with a reset before its general reject rule."""
        t = desired_table("nftwl", {"zeta": (WEB, Action.REJECT), "alpha": (WEB, Action.DROP)})
        assert t.rule_specs == (
            RuleSpec(),
            RuleSpec("alpha", "ipv4", Action.DROP),
            RuleSpec("alpha", "ipv6", Action.DROP),
            RuleSpec("zeta", "ipv4", Action.REJECT, tcp_reset=True),
            RuleSpec("zeta", "ipv4", Action.REJECT),
            RuleSpec("zeta", "ipv6", Action.REJECT, tcp_reset=True),
            RuleSpec("zeta", "ipv6", Action.REJECT),
        )
        assert t.rules == (
            f"{RULE_TAG} established",
            f"{RULE_TAG} alpha ipv4 drop",
            f"{RULE_TAG} alpha ipv6 drop",
            f"{RULE_TAG} zeta ipv4 reject tcp-reset",
            f"{RULE_TAG} zeta ipv4 reject",
            f"{RULE_TAG} zeta ipv6 reject tcp-reset",
            f"{RULE_TAG} zeta ipv6 reject",
        )

    def test_chain_priority(self) -> None:
        """The base chain hooks input at the configured priority."""
        t = desired_table("nftwl", {}, priority=-5)
        assert t.chain == ChainSpec(name=CHAIN, hook="input", priority=-5)
        assert t.sets == {}
        assert t.rule_specs == (RuleSpec(),)

    def test_empty_whitelist_still_has_its_sets_and_rules(self) -> None:
        """A whitelist with no content keeps empty sets and its guard rules."""
        t = desired_table("nftwl", {"w": (WhitelistContent(), Action.DROP)})
        assert len(t.sets) == 5
        assert all(s.elements == frozenset() for s in t.sets.values())
        assert len(t.rule_specs) == 3


class TestReadingBack:
    def test_content_of_inverts_desired_table(self) -> None:
        """content_of() reads a whitelist's content back from its sets unchanged."""
        t = desired_table(
            "nftwl", {"web": (WEB, Action.DROP), "x": (WhitelistContent(), Action.DROP)}
        )
        assert content_of(t, "web") == WEB
        assert content_of(t, "x") == WhitelistContent()

    def test_content_of_normalises_live_elements(self) -> None:
        """Live sets holding adjacent or misplaced blocks read back collapsed."""
        t = TableState(name="nftwl")
        t.sets["w_v4_nets"] = SetState(
            SetSpec("w_v4_nets", SetKind.V4_NETS),
            frozenset({IPv4Network("192.0.2.0/25"), IPv4Network("192.0.2.128/25")}),
        )
        t.sets["w_v4_hosts"] = SetState(
            SetSpec("w_v4_hosts", SetKind.V4_HOSTS), frozenset({IPv4Network("192.0.2.9/32")})
        )
        assert content_of(t, "w").v4 == (IPv4Network("192.0.2.0/24"),)

    def test_content_of_missing_whitelist_is_empty(self) -> None:
        """A whitelist without sets in the table reads as empty content."""
        assert content_of(TableState(name="nftwl"), "nope") == WhitelistContent()

    def test_whitelists_in_lists_names_with_a_ports_set(self) -> None:
        """whitelists_in() names every whitelist whose ports set exists, sorted."""
        t = desired_table("nftwl", {"web": (WEB, Action.DROP), "api": (WEB, Action.DROP)})
        t.sets["manual"] = SetState(SetSpec("manual", SetKind.V4_HOSTS))
        assert whitelists_in(t) == ["api", "web"]
        assert whitelists_in(TableState(name="nftwl")) == []
