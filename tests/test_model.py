"""Typed whitelist values (nftwl.model)."""

from __future__ import annotations

from typing import Any

import pytest

from nftwl.model import (
    Action,
    IPv4Network,
    IPv6Network,
    PortRange,
    Proto,
    WhitelistContent,
    collapse_ports,
)

TCP, UDP = Proto.TCP, Proto.UDP


class TestPortRange:
    @pytest.mark.parametrize(
        ("low", "high"), [(0, 0), (0, 10), (1, 65536), (65536, 65536), (10, 9), (-1, 5)]
    )
    def test_invalid_bounds_raise(self, low: int, high: int) -> None:
        """A range outside 1-65535 or with low > high cannot be constructed."""
        with pytest.raises(ValueError, match="invalid port range"):
            PortRange(TCP, low, high)

    @pytest.mark.parametrize(("low", "high"), [(1, 1), (65535, 65535), (1, 65535), (80, 90)])
    def test_valid_bounds(self, low: int, high: int) -> None:
        """Ranges within 1-65535 with low <= high are accepted as given."""
        r = PortRange(UDP, low, high)
        assert (r.proto, r.low, r.high) == (UDP, low, high)

    @pytest.mark.parametrize(
        ("r", "text"),
        [
            (PortRange(TCP, 22, 22), "22/tcp"),
            (PortRange(UDP, 3478, 3481), "3478-3481/udp"),
            (PortRange(TCP, 1, 65535), "1-65535/tcp"),
        ],
    )
    def test_str(self, r: PortRange, text: str) -> None:
        """A single port prints without a range; a range prints LOW-HIGH; both with /proto."""
        assert str(r) == text

    def test_ordering_is_proto_then_low_then_high(self) -> None:
        """Sorting groups by protocol (tcp first), then by low and high port."""
        ranges = [PortRange(UDP, 1, 2), PortRange(TCP, 5, 9), PortRange(TCP, 5, 6)]
        assert sorted(ranges) == [PortRange(TCP, 5, 6), PortRange(TCP, 5, 9), PortRange(UDP, 1, 2)]

    def test_is_hashable_and_immutable(self) -> None:
        """Port ranges are frozen values usable as set elements."""
        r = PortRange(TCP, 80, 80)
        assert {r, PortRange(TCP, 80, 80)} == {r}
        with pytest.raises(AttributeError):
            r.low = 81  # type: ignore[misc]


class TestCollapsePorts:
    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ([], []),
            ([(TCP, 80, 80)], [(TCP, 80, 80)]),
            ([(TCP, 80, 80), (TCP, 80, 80)], [(TCP, 80, 80)]),
            ([(TCP, 80, 90), (TCP, 85, 100)], [(TCP, 80, 100)]),
            ([(TCP, 85, 100), (TCP, 80, 90)], [(TCP, 80, 100)]),
            ([(TCP, 80, 100), (TCP, 85, 90)], [(TCP, 80, 100)]),
            ([(TCP, 80, 80), (TCP, 81, 81)], [(TCP, 80, 81)]),
            ([(TCP, 80, 80), (TCP, 82, 82)], [(TCP, 80, 80), (TCP, 82, 82)]),
            ([(TCP, 80, 90), (UDP, 85, 100)], [(TCP, 80, 90), (UDP, 85, 100)]),
            ([(TCP, 90, 90), (UDP, 91, 91)], [(TCP, 90, 90), (UDP, 91, 91)]),
            ([(UDP, 1, 65535), (TCP, 443, 443), (UDP, 53, 53)], [(TCP, 443, 443), (UDP, 1, 65535)]),
            (
                [(TCP, 1, 10), (TCP, 20, 30), (TCP, 11, 19), (TCP, 40, 40)],
                [(TCP, 1, 30), (TCP, 40, 40)],
            ),
            ([(TCP, 65534, 65535), (TCP, 1, 65533)], [(TCP, 1, 65535)]),
        ],
    )
    def test_examples(
        self, given: list[tuple[Proto, int, int]], expected: list[tuple[Proto, int, int]]
    ) -> None:
        """Overlapping, contained and adjacent ranges merge per protocol; output is sorted."""
        out = collapse_ports(PortRange(*g) for g in given)
        assert out == tuple(PortRange(*e) for e in expected)


class TestWhitelistContent:
    def test_build_collapses_and_sorts(self) -> None:
        """build() collapses addresses per family and merges ports, from unsorted input."""
        c = WhitelistContent.build(
            v4=[
                IPv4Network("192.0.2.128/25"),
                IPv4Network("10.0.0.1/32"),
                IPv4Network("192.0.2.0/25"),
            ],
            v6=[IPv6Network("2001:db8::/64"), IPv6Network("2001:db8::/48")],
            ports=[PortRange(UDP, 53, 53), PortRange(TCP, 22, 22), PortRange(TCP, 23, 23)],
        )
        assert c.v4 == (IPv4Network("10.0.0.1/32"), IPv4Network("192.0.2.0/24"))
        assert c.v6 == (IPv6Network("2001:db8::/48"),)
        assert c.ports == (PortRange(TCP, 22, 23), PortRange(UDP, 53, 53))

    def test_equal_content_compares_equal_whatever_the_input_order(self) -> None:
        """Two spellings of the same whitelist build equal values (the reconciler's no-op test)."""
        a = WhitelistContent.build(
            v4=[IPv4Network("192.0.2.0/25"), IPv4Network("192.0.2.128/25")],
            ports=[PortRange(TCP, 80, 80)],
        )
        b = WhitelistContent.build(v4=[IPv4Network("192.0.2.0/24")], ports=[PortRange(TCP, 80, 80)])
        assert a == b
        assert hash(a) == hash(b)

    def test_has_sources(self) -> None:
        """has_sources is true when either family has a block, false when both are empty."""
        assert not WhitelistContent.build(ports=[PortRange(TCP, 1, 1)]).has_sources
        assert WhitelistContent.build(v4=[IPv4Network("192.0.2.1/32")]).has_sources
        assert WhitelistContent.build(v6=[IPv6Network("2001:db8::1/128")]).has_sources

    def test_summary_counts_blocks_per_family_and_port_ranges(self) -> None:
        """summary() states the collapsed counts per family and of port ranges."""
        c = WhitelistContent.build(
            v4=[IPv4Network("192.0.2.0/24"), IPv4Network("198.51.100.0/24")],
            v6=[IPv6Network("2001:db8::/48")],
            ports=[PortRange(TCP, 1, 1), PortRange(UDP, 1, 1), PortRange(UDP, 2, 2)],
        )
        assert c.summary() == "2 IPv4, 1 IPv6 blocks, 2 port ranges"

    def test_to_json_spells_single_addresses_without_prefix(self) -> None:
        """to_json writes hosts without /32 or /128, networks as CIDRs and ports as text."""
        c = WhitelistContent.build(
            v4=[IPv4Network("192.0.2.7/32"), IPv4Network("198.51.100.0/24")],
            v6=[IPv6Network("2001:db8::1/128"), IPv6Network("2001:db8:1::/48")],
            ports=[PortRange(TCP, 22, 22), PortRange(UDP, 3478, 3481)],
        )
        assert c.to_json() == {
            "v4": ["192.0.2.7", "198.51.100.0/24"],
            "v6": ["2001:db8::1", "2001:db8:1::/48"],
            "ports": ["22/tcp", "3478-3481/udp"],
        }

    @pytest.mark.parametrize(
        "content",
        [
            WhitelistContent(),
            WhitelistContent.build(ports=[PortRange(TCP, 1, 65535)]),
            WhitelistContent.build(
                v4=[IPv4Network("0.0.0.0/0")],
                v6=[IPv6Network("::/0")],
                ports=[PortRange(UDP, 65535, 65535)],
            ),
            WhitelistContent.build(
                v4=[IPv4Network("192.0.2.7/32"), IPv4Network("198.51.100.0/24")],
                v6=[IPv6Network("2001:db8::1/128"), IPv6Network("2001:db8:1::/48")],
                ports=[PortRange(TCP, 22, 22), PortRange(UDP, 3478, 3481)],
            ),
        ],
    )
    def test_json_round_trip(self, content: WhitelistContent) -> None:
        """from_json(to_json(c)) == c, for empty, extreme and mixed content."""
        assert WhitelistContent.from_json(content.to_json()) == content

    def test_from_json_normalises_what_it_reads(self) -> None:
        """from_json collapses overlapping or unsorted data instead of trusting it."""
        c = WhitelistContent.from_json(
            {"v4": ["192.0.2.128/25", "192.0.2.0/25"], "ports": ["81/tcp", "80/tcp"]}
        )
        assert c.v4 == (IPv4Network("192.0.2.0/24"),)
        assert c.ports == (PortRange(TCP, 80, 81),)
        assert c.v6 == ()

    @pytest.mark.parametrize(
        "data",
        [
            {"v4": ["192.0.2.1/24"]},
            {"v4": ["2001:db8::/32"]},
            {"v6": ["192.0.2.0/24"]},
            {"v4": ["example.com"]},
            {"v4": "10.0.0.0/8"},
            {"ports": ["0/tcp"]},
            {"ports": ["70000/udp"]},
            {"ports": ["90-80/tcp"]},
            {"ports": ["80/sctp"]},
            {"ports": ["80"]},
            {"ports": ["x/tcp"]},
        ],
    )
    def test_from_json_revalidates_bad_data(self, data: dict[str, Any]) -> None:
        """Tampered snapshot data (bad network, wrong family, bad port or proto) is a ValueError."""
        with pytest.raises(ValueError):
            WhitelistContent.from_json(data)


class TestAction:
    def test_values(self) -> None:
        """The two actions are spelled as nft spells them."""
        assert [str(a) for a in Action] == ["drop", "reject"]
        assert Action("reject") is Action.REJECT
