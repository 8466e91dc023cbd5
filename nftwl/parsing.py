"""Parse untrusted whitelist text into typed values, line by line.

Nothing here ever hands a raw string to nft or ipset: every entry becomes an ``ipaddress``
network or a :class:`~nftwl.model.PortRange`, or an :class:`~nftwl.errors.InputProblem` that
names the origin, the line and the reason.

Source entries (one per line; ``#`` starts a comment, also after an entry):

- ``192.0.2.10``, ``2001:db8::1``                 a single address
- ``192.0.2.0/24``, ``2001:db8::/48``             a network (host bits must be zero)
- ``192.0.2.10-192.0.2.20``                       an inclusive range (same family)
- ``::ffff:192.0.2.10``                           IPv4-mapped IPv6: converted to IPv4

Port entries: ``PORT``, ``LOW-HIGH`` or ``LOW:HIGH`` (iptables spelling, accepted as an alias),
each optionally followed by ``/tcp`` or ``/udp``. Without a protocol, tcp and udp are protected.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from nftwl.errors import InputProblem
from nftwl.model import IPv4Network, IPv6Network, PortRange, Proto, WhitelistContent

_BOM = "\ufeff"
# re.ASCII: "٤٤٣" is a digit to Python, but no operator means port 443 by it.
_PORT_RE = re.compile(
    r"\A(?P<low>\d{1,5})(?:\s*[-:]\s*(?P<high>\d{1,5}))?(?:\s*/\s*(?P<proto>[A-Za-z]+))?\Z",
    re.ASCII,
)
_MAX_LINE = 4096
MAX_ENTRIES = 1_000_000
"""Entries per file. libnftables needs ~26 s and ~1.5 GB for an interval set of 1M blocks."""
MAX_ERRORS = 1000
"""Bad lines reported per file before parsing stops."""


@dataclass
class Parsed:
    """The result of parsing one input: the values from good lines plus every problem found."""

    v4: list[IPv4Network] = field(default_factory=list)
    v6: list[IPv6Network] = field(default_factory=list)
    ports: list[PortRange] = field(default_factory=list)
    errors: list[InputProblem] = field(default_factory=list)
    notices: list[InputProblem] = field(default_factory=list)
    entries: int = 0
    """How many non-blank, non-comment lines there were."""
    truncated: str = ""
    """Why parsing stopped early (too many entries or errors). The good lines so far are then
    not the whole file: the input must be refused even in lenient mode."""
    collapsed: WhitelistContent = field(default_factory=WhitelistContent)
    """The good lines normalised (addresses collapsed, ports merged), computed once."""


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield (line number, entry) with BOM, CR, comments and surrounding blanks removed."""
    if text.startswith(_BOM):
        text = text[len(_BOM) :]
    # Lines end at LF, CRLF or CR, and nothing else. str.splitlines() would also split at
    # U+2028, form feed, 0x1c-0x1e and more: "# old: 10.0.0.0/8" with one of those before the
    # address would turn a comment into an active entry, and shift every line number.
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for number, raw in enumerate(lines, start=1):
        entry = raw.split("#", 1)[0].strip(" \t")
        if entry:
            yield number, entry


def _host_bits_hint(entry: str) -> str:
    net = ipaddress.ip_network(entry, strict=False)
    return f"host bits set; did you mean {net}? (or the single address {entry.split('/')[0]})"


def _to_networks(entry: str) -> list[IPv4Network | IPv6Network]:
    """One source entry to networks. Raises ValueError with an operator-facing reason."""
    if "%" in entry:
        raise ValueError("scoped IPv6 addresses (with %zone) cannot be whitelisted")
    if "-" in entry:
        first, _, last = (p.strip() for p in entry.partition("-"))
        try:
            a = ipaddress.ip_address(first)
            b = ipaddress.ip_address(last)
        except ValueError as exc:
            if any(c.isalpha() and c.lower() not in "abcdef" for c in entry):
                raise ValueError(
                    "not an IP address, network or range (host names are never resolved)"
                ) from None
            raise ValueError(f"not a valid address range: {exc}") from None
        a, b = _unmap(a), _unmap(b)
        if a.version != b.version:
            raise ValueError("range mixes IPv4 and IPv6")
        if b < a:  # type: ignore[operator]
            raise ValueError(f"reversed range; did you mean {b}-{a}?")
        return list(ipaddress.summarize_address_range(a, b))
    if "/" in entry:
        try:
            net = ipaddress.ip_network(entry, strict=True)
        except ValueError as exc:
            if "has host bits set" in str(exc):
                raise ValueError(_host_bits_hint(entry)) from None
            raise ValueError(f"not a valid network: {exc}") from None
        if isinstance(net, IPv6Network) and net.prefixlen >= 96:
            mapped = net.network_address.ipv4_mapped
            if mapped is not None:
                return [IPv4Network(f"{mapped}/{net.prefixlen - 96}")]
        return [net]
    try:
        addr = _unmap(ipaddress.ip_address(entry))
    except ValueError:
        raise ValueError(
            "not an IP address, network or range (host names are never resolved)"
        ) from None
    return [ipaddress.ip_network(addr)]


def _unmap(
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """IPv4-mapped IPv6 (``::ffff:a.b.c.d``) is the IPv4 address; that is how the kernel sees it
    on the wire for IPv4 packets, so an IPv6 entry of that form would never match anything."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _bounded(text: str, origin: str, out: Parsed) -> Iterator[tuple[int, str]]:
    """The entries of ``text``, stopping with an error past MAX_ENTRIES entries or MAX_ERRORS
    bad lines: a garbage or runaway file must not take gigabytes to parse and report."""
    for number, entry in _lines(text):
        if out.entries >= MAX_ENTRIES:
            out.truncated = f"more than {MAX_ENTRIES} entries; refused"
        elif len(out.errors) >= MAX_ERRORS:
            out.truncated = f"more than {MAX_ERRORS} bad lines; stopped"
        if out.truncated:
            out.errors.append(InputProblem(origin, number, "", out.truncated))
            return
        out.entries += 1
        yield number, entry


def parse_sources(text: str, origin: str) -> Parsed:
    """Parse a source-address whitelist (see module docstring for the forms)."""
    out = Parsed()
    for number, entry in _bounded(text, origin, out):
        if len(entry) > _MAX_LINE:
            out.errors.append(InputProblem(origin, number, entry[:40] + "...", "line too long"))
            continue
        try:
            nets = _to_networks(entry)
        except ValueError as exc:
            out.errors.append(InputProblem(origin, number, entry, str(exc)))
            continue
        # Any IPv6 spelling that yields IPv4 was mapped (::ffff:a.b.c.d, 0:0:0:0:0:ffff:..., ...).
        if ":" in entry and nets and nets[0].version == 4:
            out.notices.append(
                InputProblem(origin, number, entry, f"IPv4-mapped address, applied as {nets[0]}")
            )
        for net in nets:
            if isinstance(net, IPv4Network):
                out.v4.append(net)
            else:
                out.v6.append(net)
    _note_collapsed(out, origin)
    return out


def _note_collapsed(out: Parsed, origin: str) -> None:
    content = out.collapsed = WhitelistContent.build(out.v4, out.v6)
    merged = len(out.v4) + len(out.v6) - len(content.v4) - len(content.v6)
    if merged > 0:
        out.notices.append(
            InputProblem(
                origin, 0, "", f"{merged} duplicate, overlapping or adjacent entries merged"
            )
        )


def parse_ports(text: str, origin: str) -> Parsed:
    """Parse a protected-port list (see module docstring for the forms)."""
    out = Parsed()
    for number, entry in _bounded(text, origin, out):
        try:
            out.ports.extend(_to_ports(entry))
        except ValueError as exc:
            out.errors.append(InputProblem(origin, number, entry[:80], str(exc)))
    out.collapsed = WhitelistContent.build(ports=out.ports)
    return out


def _to_ports(entry: str) -> list[PortRange]:
    m = _PORT_RE.match(entry)
    if m is None:
        raise ValueError(
            "not a port entry; expected PORT, LOW-HIGH or LOW:HIGH, optionally /tcp or /udp"
            " (service names are not resolved)"
        )
    low = int(m["low"])
    high = int(m["high"]) if m["high"] is not None else low
    for port in (low, high):
        if not 1 <= port <= 65535:
            raise ValueError(f"port {port} out of range 1-65535")
    if high < low:
        raise ValueError(f"reversed range; did you mean {high}-{low}?")
    proto = m["proto"]
    if proto is None:
        return [PortRange(Proto.TCP, low, high), PortRange(Proto.UDP, low, high)]
    try:
        return [PortRange(Proto(proto.lower()), low, high)]
    except ValueError:
        raise ValueError(f"unknown protocol {proto!r}; use tcp or udp") from None
