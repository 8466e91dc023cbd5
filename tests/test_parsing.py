"""Parsing and normalising untrusted whitelist text (nftwl.parsing)."""

from __future__ import annotations

import ipaddress
import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nftwl import parsing
from nftwl.model import IPv4Network, IPv6Network, PortRange, Proto, WhitelistContent
from nftwl.parsing import Parsed, parse_ports, parse_sources

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"

TCP, UDP = Proto.TCP, Proto.UDP


def nets(parsed: Parsed) -> list[str]:
    """Every network a parse produced, IPv4 first, in input order."""
    return [str(n) for n in [*parsed.v4, *parsed.v6]]


def collapsed(parsed: Parsed) -> WhitelistContent:
    return WhitelistContent.build(parsed.v4, parsed.v6, parsed.ports)


def problems(parsed: Parsed) -> list[str]:
    return [str(p) for p in parsed.errors]


class TestSourceEntries:
    @pytest.mark.parametrize(
        ("entry", "expected"),
        [
            ("192.0.2.10", ["192.0.2.10/32"]),
            ("192.0.2.0/24", ["192.0.2.0/24"]),
            ("0.0.0.0/0", ["0.0.0.0/0"]),
            ("192.0.2.7/32", ["192.0.2.7/32"]),
            ("2001:db8::1", ["2001:db8::1/128"]),
            ("2001:db8::/48", ["2001:db8::/48"]),
            ("  192.0.2.10  ", ["192.0.2.10/32"]),
            ("\t2001:db8::/32\t", ["2001:db8::/32"]),
        ],
    )
    def test_single_entry(self, entry: str, expected: list[str]) -> None:
        """A plain address becomes a host network, a CIDR stays as written."""
        parsed = parse_sources(entry, "allow.txt")
        assert parsed.errors == []
        assert nets(parsed) == expected
        assert parsed.entries == 1

    @pytest.mark.parametrize(
        ("entry", "expected"),
        [
            ("2001:DB8::1", "2001:db8::1/128"),
            ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1/128"),
            ("2001:DB8:0:0::/48", "2001:db8::/48"),
            ("2001:0DB8:0000::/32", "2001:db8::/32"),
            ("fe80:0:0:0:0:0:0:0/10", "fe80::/10"),
        ],
    )
    def test_non_canonical_ipv6_is_normalised(self, entry: str, expected: str) -> None:
        """Upper case, leading zeros and uncompressed IPv6 spellings parse to the canonical form."""
        parsed = parse_sources(entry, "allow.txt")
        assert parsed.errors == []
        assert parsed.v4 == []
        assert [str(n) for n in parsed.v6] == [expected]

    @pytest.mark.parametrize(
        ("entry", "expected"),
        [
            ("::ffff:192.0.2.10", ["192.0.2.10/32"]),
            ("::FFFF:192.0.2.10", ["192.0.2.10/32"]),
            ("::ffff:c000:20a", ["192.0.2.10/32"]),
            ("0:0:0:0:0:ffff:c000:020a", ["192.0.2.10/32"]),
            ("::ffff:192.0.2.0/120", ["192.0.2.0/24"]),
            ("::ffff:192.0.2.0/128", ["192.0.2.0/32"]),
        ],
    )
    def test_ipv4_mapped_ipv6_becomes_ipv4(self, entry: str, expected: list[str]) -> None:
        """An IPv4-mapped IPv6 address or network is applied as the IPv4 one, with a notice."""
        parsed = parse_sources(entry, "allow.txt")
        assert parsed.errors == []
        assert parsed.v6 == []
        assert [str(n) for n in parsed.v4] == expected
        assert any("IPv4-mapped" in n.reason and n.line == 1 for n in parsed.notices)

    @pytest.mark.parametrize(
        ("entry", "expected"),
        [
            # aligned ranges are exactly one block
            ("192.0.2.0-192.0.2.255", ["192.0.2.0/24"]),
            ("192.0.2.7-192.0.2.7", ["192.0.2.7/32"]),
            # non-aligned ranges are summarised into the minimal list of CIDRs
            (
                "192.0.2.10-192.0.2.20",
                ["192.0.2.10/31", "192.0.2.12/30", "192.0.2.16/30", "192.0.2.20/32"],
            ),
            ("192.0.2.255-192.0.3.0", ["192.0.2.255/32", "192.0.3.0/32"]),
            ("192.0.2.1 - 192.0.2.2", ["192.0.2.1/32", "192.0.2.2/32"]),
            ("2001:db8::-2001:db8::ff", ["2001:db8::/120"]),
            ("2001:db8::1-2001:db8::3", ["2001:db8::1/128", "2001:db8::2/127"]),
            ("::ffff:192.0.2.0-::ffff:192.0.2.3", ["192.0.2.0/30"]),
        ],
    )
    def test_range(self, entry: str, expected: list[str]) -> None:
        """An inclusive A-B range becomes the CIDRs that cover exactly A..B."""
        parsed = parse_sources(entry, "allow.txt")
        assert parsed.errors == []
        assert nets(parsed) == expected

    @pytest.mark.parametrize(
        ("entry", "reason"),
        [
            ("192.0.2.1/24", "host bits set; did you mean 192.0.2.0/24?"),
            ("10.1.2.3/8", "host bits set; did you mean 10.0.0.0/8?"),
            ("2001:db8::1/32", "host bits set; did you mean 2001:db8::/32?"),
            ("example.com", "host names are never resolved"),
            ("localhost", "host names are never resolved"),
            ("my-host.example.com", "host names are never resolved"),
            ("fe80::1%eth0", "scoped IPv6"),
            ("fe80::/64%eth0", "scoped IPv6"),
            ("192.0.2.20-192.0.2.10", "reversed range; did you mean 192.0.2.10-192.0.2.20?"),
            ("2001:db8::9-2001:db8::1", "reversed range; did you mean 2001:db8::1-2001:db8::9?"),
            ("192.0.2.1-2001:db8::1", "range mixes IPv4 and IPv6"),
            ("2001:db8::1-192.0.2.1", "range mixes IPv4 and IPv6"),
            ("192.0.2.1-", "not a valid address range"),
            ("192.0.2.0/33", "not a valid network"),
            ("2001:db8::/129", "not a valid network"),
            ("192.0.2.0/", "not a valid network"),
            ("256.0.0.1", "not an IP address"),
            ("192.0.2", "not an IP address"),
            ("192.168.01.1", "not an IP address"),
            ("192.0.2.1 192.0.2.2", "not an IP address"),
            ("192.0.2.1,192.0.2.2", "not an IP address"),
        ],
    )
    def test_invalid_entry(self, entry: str, reason: str) -> None:
        """A bad entry is an error naming origin, line, entry and reason; nothing is kept."""
        parsed = parse_sources(f"192.0.2.99\n\n{entry}\n", "allow.txt")
        assert nets(parsed) == ["192.0.2.99/32"]
        assert len(parsed.errors) == 1
        problem = parsed.errors[0]
        assert problem.line == 3
        assert str(problem).startswith(f"allow.txt:3: {entry!r}:")
        assert reason in str(problem)

    def test_host_bits_hint_offers_the_single_address_too(self) -> None:
        """The host-bits hint names both the network and the single address that may be meant."""
        (problem,) = parse_sources("192.0.2.77/24", "allow.txt").errors
        assert "did you mean 192.0.2.0/24?" in problem.reason
        assert "192.0.2.77" in problem.reason.split("?", 1)[1]

    def test_overlong_line_is_an_error_with_truncated_text(self) -> None:
        """A line longer than 4096 characters is refused and not echoed in full."""
        parsed = parse_sources("192.0.2.1\n" + "1" * 5000 + "\n", "allow.txt")
        assert nets(parsed) == ["192.0.2.1/32"]
        (problem,) = parsed.errors
        assert problem.line == 2
        assert "too long" in str(problem)
        assert len(str(problem)) < 200


class TestSourceFileStructure:
    @pytest.mark.parametrize(
        "text",
        [
            "192.0.2.1\n# comment\n\n2001:db8::/48\n",
            "192.0.2.1\r\n# comment\r\n\r\n2001:db8::/48\r\n",
            "\ufeff192.0.2.1\n# comment\n\n2001:db8::/48",
            "\ufeff192.0.2.1\r\n   # indented comment\r\n \t \r\n2001:db8::/48 # trailing\r\n",
            "192.0.2.1   # the demo client\n#2001:db8::1\n\n2001:db8::/48#no space\n",
            "192.0.2.1\r# old mac line ends\r\r2001:db8::/48\r",
        ],
        ids=["lf", "crlf", "bom", "bom-crlf-indented", "trailing-comments", "cr"],
    )
    def test_layout_variants_give_the_same_content(self, text: str) -> None:
        """BOM, CRLF/CR line ends, blank lines and comments (also after an entry) are ignored."""
        parsed = parse_sources(text, "allow.txt")
        assert parsed.errors == []
        assert nets(parsed) == ["192.0.2.1/32", "2001:db8::/48"]
        assert parsed.entries == 2

    @pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\x1c", "\x1e"])
    def test_only_newline_ends_a_line(self, sep: str) -> None:
        """A comment containing another line-separator character stays a comment: the address
        after it is not activated, and later line numbers stay right."""
        text = f"192.0.2.1\n# retired, do not re-enable:{sep}0.0.0.0/0\nbad\n"
        parsed = parse_sources(text, "allow.txt")
        assert nets(parsed) == ["192.0.2.1/32"]
        assert [p.line for p in parsed.errors] == [3]

    def test_line_numbers_count_blank_and_comment_lines(self) -> None:
        """Reported line numbers are the file's physical lines, including comments and blanks."""
        text = "\ufeff# header\r\n\r\n192.0.2.1\r\n\r\nnot-an-ip # bad\r\n"
        (problem,) = parse_sources(text, "/etc/nftwl/whiteiplist.txt").errors
        assert str(problem) == (
            "/etc/nftwl/whiteiplist.txt:5: 'not-an-ip': not an IP address, network or range "
            "(host names are never resolved)"
        )

    def test_every_bad_line_is_reported(self) -> None:
        """Parsing continues past errors and reports each bad line with its own number."""
        text = "bad1\n192.0.2.1\nbad2\n\nbad3/24\n"
        parsed = parse_sources(text, "allow.txt")
        assert [p.line for p in parsed.errors] == [1, 3, 5]
        assert all(str(p).startswith(f"allow.txt:{p.line}: ") for p in parsed.errors)

    def test_empty_and_comment_only_inputs_have_no_entries(self) -> None:
        """A file with only comments and blanks parses to nothing and is not an error."""
        for text in ("", "\n\n", "# only a comment\n  # another\n", "\ufeff"):
            parsed = parse_sources(text, "allow.txt")
            assert (parsed.entries, parsed.errors, nets(parsed)) == (0, [], [])


class TestCollapsing:
    @pytest.mark.parametrize(
        ("lines", "v4", "v6"),
        [
            (["192.0.2.1", "192.0.2.1"], ["192.0.2.1/32"], []),
            (["192.0.2.0/24", "192.0.2.128/25"], ["192.0.2.0/24"], []),
            (["192.0.2.0/25", "192.0.2.128/25"], ["192.0.2.0/24"], []),
            (["192.0.2.0/24", "192.0.3.0/24"], ["192.0.2.0/23"], []),
            # adjacent but not mergeable into one CIDR: both stay
            (["192.0.3.0/24", "192.0.4.0/24"], ["192.0.3.0/24", "192.0.4.0/24"], []),
            (["192.0.2.0/31", "192.0.2.2/31", "192.0.2.4/30"], ["192.0.2.0/29"], []),
            (
                ["10.0.0.5", "10.0.0.0-10.0.0.10"],
                ["10.0.0.0/29", "10.0.0.8/31", "10.0.0.10/32"],
                [],
            ),
            (["2001:db8::/48", "2001:db8:0:1::/64"], [], ["2001:db8::/48"]),
            (["2001:db8::/49", "2001:db8:0:8000::/49"], [], ["2001:db8::/48"]),
            (["::ffff:192.0.2.1", "192.0.2.1"], ["192.0.2.1/32"], []),
            (["198.51.100.0/24", "192.0.2.0/24"], ["192.0.2.0/24", "198.51.100.0/24"], []),
        ],
    )
    def test_duplicates_overlaps_and_adjacent_blocks_collapse(
        self, lines: list[str], v4: list[str], v6: list[str]
    ) -> None:
        """Duplicate, nested and adjacent blocks collapse per family into sorted, disjoint CIDRs."""
        parsed = parse_sources("\n".join(lines), "allow.txt")
        assert parsed.errors == []
        content = collapsed(parsed)
        assert [str(n) for n in content.v4] == v4
        assert [str(n) for n in content.v6] == v6

    def test_merging_is_a_notice_not_an_error(self) -> None:
        """Redundant lines produce one whole-file notice with the merge count, never an error."""
        parsed = parse_sources("192.0.2.0/24\n192.0.2.1\n192.0.2.5\n", "allow.txt")
        assert parsed.errors == []
        (notice,) = parsed.notices
        assert notice.line == 0
        assert str(notice) == "allow.txt: 2 duplicate, overlapping or adjacent entries merged"

    def test_no_notice_when_nothing_merges(self) -> None:
        """A list that is already minimal produces no merge notice."""
        parsed = parse_sources("192.0.2.0/24\n198.51.100.1\n2001:db8::/48\n", "allow.txt")
        assert parsed.notices == []

    def test_fc08_overlapping_and_duplicate_cidrs_collapse(self) -> None:
        """FC-08: nested and duplicate CIDRs (one spelt non-canonically) collapse, no errors."""
        text = "192.0.2.0/24\n192.0.2.1\n2001:db8::/48\n2001:db8::/64\n2001:DB8:0:0::/48\n"
        parsed = parse_sources(text, "allow.txt")
        assert parsed.errors == []
        content = collapsed(parsed)
        assert content.v4 == (IPv4Network("192.0.2.0/24"),)
        assert content.v6 == (IPv6Network("2001:db8::/48"),)
        assert any(ipaddress.ip_address("192.0.2.77") in n for n in content.v4)
        assert [n.line for n in parsed.notices] == [0]


class TestFieldCasesSources:
    def test_fc10_host_bits_are_errors_with_a_hint_and_never_widened(self) -> None:
        """FC-10: CIDRs with host bits set are line-numbered errors with a hint; nothing widened."""
        text = "192.0.2.1/24\n198.51.100.0/24\n2001:db8::1/32\n"
        parsed = parse_sources(text, "allow.txt")
        assert [str(p) for p in parsed.errors] == [
            "allow.txt:1: '192.0.2.1/24': host bits set; did you mean 192.0.2.0/24? "
            "(or the single address 192.0.2.1)",
            "allow.txt:3: '2001:db8::1/32': host bits set; did you mean 2001:db8::/32? "
            "(or the single address 2001:db8::1)",
        ]
        assert nets(parsed) == ["198.51.100.0/24"]

    def test_fc16_mixed_families_mapped_and_non_canonical(self) -> None:
        """FC-16: both families kept, IPv4-mapped converted, non-canonical IPv6 normalised."""
        text = "192.0.2.0/24\n2001:db8:1::/48\n::ffff:198.51.100.7\n2001:DB8:0:0::/64\n"
        parsed = parse_sources(text, "allow.txt")
        assert parsed.errors == []
        content = collapsed(parsed)
        assert set(content.v4) == {IPv4Network("192.0.2.0/24"), IPv4Network("198.51.100.7/32")}
        assert set(content.v6) == {IPv6Network("2001:db8:1::/48"), IPv6Network("2001:db8::/64")}
        (notice,) = parsed.notices
        assert notice.line == 3
        assert "198.51.100.7" in notice.reason

    @staticmethod
    def _expected(path: Path) -> tuple[list[IPv4Network], list[IPv6Network]]:
        """Independent reading of a plain CIDR-per-line file: ip_network + collapse per family."""
        v4: list[IPv4Network] = []
        v6: list[IPv6Network] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            net = ipaddress.ip_network(line)
            (v4 if isinstance(net, IPv4Network) else v6).append(net)  # type: ignore[arg-type]
        return (
            list(ipaddress.collapse_addresses(v4)),
            list(ipaddress.collapse_addresses(v6)),
        )

    def test_fc17_real_cloud_ranges_collapse_like_ipaddress(self) -> None:
        """FC-17: AWS's published ranges parse without errors to exactly the collapsed blocks."""
        path = REAL_DATA / "cloud-aws.txt"
        parsed = parse_sources(path.read_text(encoding="utf-8"), str(path))
        assert parsed.errors == []
        assert parsed.entries > 8000
        content = collapsed(parsed)
        v4, v6 = self._expected(path)
        assert list(content.v4) == v4
        assert list(content.v6) == v6
        # The case's own figures: ~6,800 IPv4 lines collapse to ~1,560 blocks.
        assert len(parsed.v4) > 6000
        assert 1400 < len(content.v4) < 1700

    @pytest.mark.parametrize(
        "name",
        sorted(p.name for p in REAL_DATA.iterdir()) if REAL_DATA.is_dir() else ["(missing)"],
    )
    def test_fc17_every_real_file_parses_cleanly(self, name: str) -> None:
        """FC-17: every real published list in shared/data/real parses with zero errors."""
        path = REAL_DATA / name
        parsed = parse_sources(path.read_text(encoding="utf-8"), str(path))
        assert parsed.errors == []
        assert parsed.entries > 0
        v4, v6 = self._expected(path)
        content = collapsed(parsed)
        assert (list(content.v4), list(content.v6)) == (v4, v6)


class TestPortEntries:
    @pytest.mark.parametrize(
        ("entry", "expected"),
        [
            ("443", [PortRange(TCP, 443, 443), PortRange(UDP, 443, 443)]),
            ("1", [PortRange(TCP, 1, 1), PortRange(UDP, 1, 1)]),
            ("65535", [PortRange(TCP, 65535, 65535), PortRange(UDP, 65535, 65535)]),
            ("8000-8080", [PortRange(TCP, 8000, 8080), PortRange(UDP, 8000, 8080)]),
            ("3478:3481", [PortRange(TCP, 3478, 3481), PortRange(UDP, 3478, 3481)]),
            ("8000 - 8080", [PortRange(TCP, 8000, 8080), PortRange(UDP, 8000, 8080)]),
            ("22-22", [PortRange(TCP, 22, 22), PortRange(UDP, 22, 22)]),
            ("22/tcp", [PortRange(TCP, 22, 22)]),
            ("53/udp", [PortRange(UDP, 53, 53)]),
            ("22/TCP", [PortRange(TCP, 22, 22)]),
            ("53/Udp", [PortRange(UDP, 53, 53)]),
            ("8000-8080/tcp", [PortRange(TCP, 8000, 8080)]),
            ("3478:3481/udp", [PortRange(UDP, 3478, 3481)]),
            ("443 / tcp", [PortRange(TCP, 443, 443)]),
            ("0443", [PortRange(TCP, 443, 443), PortRange(UDP, 443, 443)]),
        ],
    )
    def test_accepted_forms(self, entry: str, expected: list[PortRange]) -> None:
        """PORT, LOW-HIGH and LOW:HIGH, optional /tcp or /udp (any case); bare means tcp and udp."""
        parsed = parse_ports(entry, "ports.txt")
        assert parsed.errors == []
        assert parsed.ports == expected

    @pytest.mark.parametrize(
        ("entry", "reason"),
        [
            ("0", "port 0 out of range 1-65535"),
            ("70000", "port 70000 out of range 1-65535"),
            ("65536", "port 65536 out of range 1-65535"),
            ("0-100", "port 0 out of range 1-65535"),
            ("100-70000/tcp", "port 70000 out of range 1-65535"),
            ("9000-8000", "reversed range; did you mean 8000-9000?"),
            ("81:80/udp", "reversed range; did you mean 80-81?"),
            ("ssh", "service names are not resolved"),
            ("http/tcp", "service names are not resolved"),
            ("443/sctp", "unknown protocol 'sctp'; use tcp or udp"),
            ("-1", "not a port entry"),
            ("80-", "not a port entry"),
            ("80-90-100", "not a port entry"),
            ("80,443", "not a port entry"),
            ("80 443", "not a port entry"),
            ("tcp/80", "not a port entry"),
            ("1.5", "not a port entry"),
        ],
    )
    def test_rejected_forms(self, entry: str, reason: str) -> None:
        """Out-of-range, reversed, named or malformed ports are errors naming origin and line."""
        parsed = parse_ports(f"22\n# c\n{entry}  # why\n", "ports.txt")
        assert parsed.ports == [PortRange(TCP, 22, 22), PortRange(UDP, 22, 22)]
        (problem,) = parsed.errors
        assert problem.line == 3
        assert str(problem).startswith(f"ports.txt:3: {entry!r}:")
        assert reason in str(problem)

    def test_fc12_port_syntax_and_bounds(self) -> None:
        """FC-12: valid forms incl. the 3478:3481 alias parse; reversed, 70000 and 0 are errors."""
        text = "443\n8000-8080/tcp\n3478:3481\n49152-65535/udp\n9000-8000\n70000\n0\n"
        parsed = parse_ports(text, "ports.txt")
        assert problems(parsed) == [
            "ports.txt:5: '9000-8000': reversed range; did you mean 8000-9000?",
            "ports.txt:6: '70000': port 70000 out of range 1-65535",
            "ports.txt:7: '0': port 0 out of range 1-65535",
        ]
        assert collapsed(parsed).ports == (
            PortRange(TCP, 443, 443),
            PortRange(TCP, 3478, 3481),
            PortRange(TCP, 8000, 8080),
            PortRange(UDP, 443, 443),
            PortRange(UDP, 3478, 3481),
            PortRange(UDP, 49152, 65535),
        )

    @pytest.mark.parametrize(
        ("lines", "expected"),
        [
            (["80-90/tcp", "85-100/tcp"], [PortRange(TCP, 80, 100)]),
            (["80/tcp", "81/tcp", "82-83/tcp"], [PortRange(TCP, 80, 83)]),
            (["80-90/tcp", "85/udp"], [PortRange(TCP, 80, 90), PortRange(UDP, 85, 85)]),
            (["22", "22/tcp"], [PortRange(TCP, 22, 22), PortRange(UDP, 22, 22)]),
            (["1-65535/tcp", "443/tcp"], [PortRange(TCP, 1, 65535)]),
            (["100/tcp", "102/tcp"], [PortRange(TCP, 100, 100), PortRange(TCP, 102, 102)]),
        ],
    )
    def test_ranges_merge_per_protocol(self, lines: list[str], expected: list[PortRange]) -> None:
        """Overlapping and adjacent port ranges merge within a protocol, never across protocols."""
        parsed = parse_ports("\n".join(lines), "ports.txt")
        assert parsed.errors == []
        assert list(collapsed(parsed).ports) == expected

    def test_port_layout_variants(self) -> None:
        """BOM, CRLF, comments and blank lines are handled in port files as in source files."""
        parsed = parse_ports("\ufeff# ports\r\n\r\n22/tcp # ssh\r\n443\r\n", "ports.txt")
        assert parsed.errors == []
        assert parsed.entries == 2
        assert parsed.ports == [
            PortRange(TCP, 22, 22),
            PortRange(TCP, 443, 443),
            PortRange(UDP, 443, 443),
        ]


# -- properties ----------------------------------------------------------------------------------

_V4_BASE = int(ipaddress.IPv4Address("10.0.0.0"))


@st.composite
def small_v4_networks(draw: st.DrawFn) -> IPv4Network:
    """A network inside 10.0.0.0/24, so covered addresses can be enumerated."""
    prefix = draw(st.integers(min_value=24, max_value=32))
    size = 2 ** (32 - prefix)
    index = draw(st.integers(min_value=0, max_value=256 // size - 1))
    return IPv4Network((_V4_BASE + index * size, prefix))


def covered(blocks: list[IPv4Network] | tuple[IPv4Network, ...]) -> set[int]:
    return {a for n in blocks for a in range(int(n.network_address), int(n.broadcast_address) + 1)}


def minimal_cover(addresses: set[int]) -> list[IPv4Network]:
    """The fewest CIDRs covering exactly ``addresses``: summarise each maximal run."""
    ordered = sorted(addresses)
    out: list[IPv4Network] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        first, last = ipaddress.IPv4Address(ordered[i]), ipaddress.IPv4Address(ordered[j])
        out += ipaddress.summarize_address_range(first, last)
        i = j + 1
    return out


class TestProperties:
    @settings(max_examples=200, deadline=None)
    @given(st.lists(small_v4_networks(), max_size=20))
    def test_build_is_sorted_disjoint_minimal_and_covers_the_input(
        self, blocks: list[IPv4Network]
    ) -> None:
        """WhitelistContent.build: sorted, disjoint, minimal, and exactly the input's addresses."""
        out = WhitelistContent.build(v4=blocks).v4
        assert list(out) == sorted(out)
        for a, b in itertools.pairwise(out):
            assert int(a.broadcast_address) < int(b.network_address)
        assert covered(out) == covered(blocks)
        assert list(out) == minimal_cover(covered(blocks))

    @settings(max_examples=200, deadline=None)
    @given(st.integers(0, 255), st.integers(0, 255))
    def test_a_range_entry_covers_exactly_its_addresses(self, x: int, y: int) -> None:
        """Any IPv4 range A-B (A <= B) parses to blocks covering exactly A..B and nothing else."""
        low, high = min(x, y), max(x, y)
        a = ipaddress.IPv4Address(_V4_BASE + low)
        b = ipaddress.IPv4Address(_V4_BASE + high)
        parsed = parse_sources(f"{a}-{b}", "allow.txt")
        assert parsed.errors == []
        assert covered(parsed.v4) == set(range(_V4_BASE + low, _V4_BASE + high + 1))

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(
            st.tuples(st.sampled_from([TCP, UDP]), st.integers(1, 120), st.integers(0, 30)),
            max_size=15,
        )
    )
    def test_port_collapse_keeps_exactly_the_same_ports(
        self, spans: list[tuple[Proto, int, int]]
    ) -> None:
        """Parsed port lines collapse to sorted, non-touching ranges covering the same ports."""
        text = "\n".join(f"{low}-{low + width}/{proto}" for proto, low, width in spans)
        out = collapsed(parse_ports(text, "ports.txt")).ports
        want = {(p, n) for p, low, w in spans for n in range(low, low + w + 1)}
        got = {(r.proto, n) for r in out for n in range(r.low, r.high + 1)}
        assert got == want
        assert list(out) == sorted(out)
        for a, b in itertools.pairwise(out):
            assert a.proto != b.proto or a.high + 1 < b.low


class TestPortDigits:
    # Arabic-Indic and fullwidth digits, written as escapes so the source stays ASCII.
    @pytest.mark.parametrize(
        "entry", ["\u0664\u0664\u0663", "\uff14\uff14\uff13", "443-\u0664\u0664\u0665"]
    )
    def test_non_ascii_digits_are_rejected(self, entry: str) -> None:
        """Only ASCII digits make a port: other scripts' digits are an error, not port 443."""
        parsed = parse_ports(entry + "\n", "ports.txt")
        assert parsed.ports == []
        assert [p.line for p in parsed.errors] == [1]


class TestBounds:
    def test_runaway_file_is_refused_past_the_entry_limit(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """More entries than MAX_ENTRIES is an error (the update is refused), and parsing stops
        there instead of building millions of objects."""
        monkeypatch.setattr(parsing, "MAX_ENTRIES", 100)
        text = "".join(f"10.0.{i // 256}.{i % 256}\n" for i in range(500))
        parsed = parse_sources(text, "big.txt")
        assert parsed.entries == 100
        assert [str(p) for p in parsed.errors] == ["big.txt:101: more than 100 entries; refused"]

    def test_garbage_file_stops_after_the_error_limit(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A file of garbage reports the first MAX_ERRORS bad lines and one line saying so."""
        monkeypatch.setattr(parsing, "MAX_ERRORS", 10)
        parsed = parse_ports("x\n" * 5000, "ports.txt")
        assert len(parsed.errors) == 11
        assert parsed.errors[-1].reason == "more than 10 bad lines; stopped"
