"""Transactions as plain data (nftwl.transaction): rendering for humans and one-line summaries."""

from __future__ import annotations

import pytest

from nftwl.model import Action, IPv4Network, IPv6Network, PortRange, Proto, WhitelistContent
from nftwl.planner import plan
from nftwl.ruleset import ChainSpec, RuleSpec, SetKind, SetSpec, desired_table
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


def tx(*ops: Op, table: str = "nftwl") -> Transaction:
    return Transaction(table, list(ops))


class TestRender:
    @pytest.mark.parametrize(
        ("op", "line"),
        [
            (AddTable(), "add table inet nftwl"),
            (
                AddChain(ChainSpec()),
                "add chain inet nftwl input { type filter hook input priority 0; policy accept; }",
            ),
            (
                AddChain(ChainSpec(priority=-150)),
                "add chain inet nftwl input "
                "{ type filter hook input priority -150; policy accept; }",
            ),
            (FlushChain("input"), "flush chain inet nftwl input"),
            (DeleteChain("stray"), "delete chain inet nftwl stray"),
            (
                AddRule("input", RuleSpec()),
                'add rule inet nftwl input ... comment "nftwl/1 established"',
            ),
            (
                AddRule("input", RuleSpec("web", "ipv6", Action.REJECT)),
                'add rule inet nftwl input ... comment "nftwl/1 web ipv6 reject"',
            ),
            (
                AddSet(SetSpec("web_v4_hosts", SetKind.V4_HOSTS)),
                "add set inet nftwl web_v4_hosts { type ipv4_addr; }",
            ),
            (
                AddSet(SetSpec("web_v6_nets", SetKind.V6_NETS)),
                "add set inet nftwl web_v6_nets { type ipv6_addr; flags interval; }",
            ),
            (
                AddSet(SetSpec("web_ports", SetKind.PORTS)),
                "add set inet nftwl web_ports { type inet_proto . inet_service; flags interval; }",
            ),
            (FlushSet("web_v4_nets"), "flush set inet nftwl web_v4_nets"),
            (DeleteSet("old_ports"), "delete set inet nftwl old_ports"),
            (
                AddElements(
                    "web_v4_nets", (IPv4Network("192.0.2.0/24"), IPv4Network("198.51.100.0/25"))
                ),
                "add element inet nftwl web_v4_nets { 192.0.2.0/24, 198.51.100.0/25 }",
            ),
            (
                DeleteElements("web_v6_hosts", (IPv6Network("2001:db8::1/128"),)),
                "delete element inet nftwl web_v6_hosts { 2001:db8::1/128 }",
            ),
            (
                AddElements(
                    "web_ports", (PortRange(Proto.TCP, 22, 22), PortRange(Proto.UDP, 3478, 3481))
                ),
                "add element inet nftwl web_ports { 22/tcp, 3478-3481/udp }",
            ),
        ],
    )
    def test_each_operation(self, op: Op, line: str) -> None:
        """Each operation renders as one nft-like line naming the inet table."""
        assert tx(op).render() == line

    def test_table_name_is_used(self) -> None:
        """The transaction's table name appears in every line."""
        text = tx(AddTable(), FlushSet("a_ports"), table="edge").render()
        assert text.splitlines() == ["add table inet edge", "flush set inet edge a_ports"]

    def test_long_element_lists_are_shortened(self) -> None:
        """More than eight elements show the first eight and how many more there are."""
        elements = tuple(IPv4Network(f"192.0.2.{i}/32") for i in range(20))
        line = tx(AddElements("w_v4_hosts", elements)).render()
        assert line.endswith("192.0.2.7/32, ... (12 more) }")
        assert "192.0.2.8/32" not in line

    def test_exactly_eight_elements_are_shown_in_full(self) -> None:
        """Eight elements are shown without a '... more' tail."""
        elements = tuple(IPv4Network(f"192.0.2.{i}/32") for i in range(8))
        line = tx(AddElements("w_v4_hosts", elements)).render()
        assert "more" not in line
        assert line.count("/32") == 8

    def test_empty_transaction_renders_nothing(self) -> None:
        """An empty transaction renders as an empty string."""
        assert tx().render() == ""

    def test_render_keeps_operation_order(self) -> None:
        """Lines appear in the order the operations will be applied."""
        t = tx(FlushChain("input"), DeleteSet("old_ports"), AddTable())
        assert [line.split()[0:2] for line in t.render().splitlines()] == [
            ["flush", "chain"],
            ["delete", "set"],
            ["add", "table"],
        ]

    def test_rendered_plan_of_a_first_apply(self) -> None:
        """A first-apply plan renders table, sets, elements, chain and rules, one per line."""
        content = WhitelistContent.from_json({"v4": ["192.0.2.0/24"], "ports": ["22/tcp"]})
        text = plan(desired_table("nftwl", {"web": (content, Action.DROP)}), None).render()
        lines = text.splitlines()
        assert lines[0] == "add table inet nftwl"
        assert "add element inet nftwl web_v4_nets { 192.0.2.0/24 }" in lines
        assert "add element inet nftwl web_ports { 22/tcp }" in lines
        assert lines[-1] == 'add rule inet nftwl input ... comment "nftwl/1 web ipv6 drop"'


class TestDescribe:
    def test_empty_transaction_is_no_change(self) -> None:
        """An empty transaction is described as 'no change' and is falsy."""
        t = tx()
        assert t.describe() == "no change"
        assert not t

    def test_set_changes_are_listed_sorted_by_set(self) -> None:
        """Each changed set appears as 'name +added -removed', sorted by name."""
        t = tx(FlushSet("x"))
        t.changes = {
            "web_v4_nets": SetChange(added=3, removed=1),
            "api_ports": SetChange(added=0, removed=2),
        }
        assert t.describe() == "api_ports +0 -2, web_v4_nets +3 -1"

    def test_full_replace_is_marked(self) -> None:
        """A set that was flushed and refilled is marked '(full replace)'."""
        t = tx(FlushSet("w_v4_nets"))
        t.changes = {"w_v4_nets": SetChange(added=1, removed=20, replaced=True)}
        assert t.describe() == "w_v4_nets +1 -20 (full replace)"

    def test_replace_without_content_change_is_still_listed(self) -> None:
        """A replace that changes no element (non-canonical set rewritten) is still reported."""
        t = tx(FlushSet("w_v4_nets"))
        t.changes = {"w_v4_nets": SetChange(replaced=True)}
        assert t.describe() == "w_v4_nets +0 -0 (full replace)"

    def test_unchanged_sets_are_omitted(self) -> None:
        """Sets recorded with no change (e.g. a new empty set) are left out of the summary."""
        t = tx(AddSet(SetSpec("w_v6_hosts", SetKind.V6_HOSTS)))
        t.changes = {"w_v6_hosts": SetChange(), "w_v4_hosts": SetChange(added=1)}
        assert t.describe() == "w_v4_hosts +1 -0"

    def test_rules_rewritten_is_mentioned_last(self) -> None:
        """A transaction that rewrites the rules says so after the set changes."""
        t = tx(FlushChain("input"))
        t.changes = {"w_ports": SetChange(added=1)}
        t.rules_rewritten = True
        assert t.describe() == "w_ports +1 -0, rules rewritten"

    def test_structural_only(self) -> None:
        """Operations without set content changes are summarised by their count."""
        t = tx(FlushChain("stray"), DeleteChain("stray"))
        assert t.describe() == "2 structural operations"
        assert t
