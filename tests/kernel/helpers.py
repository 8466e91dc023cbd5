"""Shared helpers for kernel tests (they must run inside the ``netns`` fixture's namespace).

Three groups:

- building and applying whitelists: :func:`make_content`, :func:`desired`, :func:`apply_whitelists`;
- looking at the kernel directly, independently of nftwl's own parser: :func:`nft`,
  :func:`list_table`, :func:`raw_elements`, :func:`live_networks`;
- traffic on loopback and configs on disk: :func:`listen_tcp`, :func:`listen_udp`,
  :func:`try_connect`, :func:`udp_delivered`, :func:`add_lo_addresses`, :func:`write_config`.

Nothing here creates a namespace; call these only from a test that uses the ``netns`` fixture
(every test under tests/kernel/ does, automatically).
"""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nftwl.model import Action, WhitelistContent
from nftwl.nftables_backend import NftablesBackend
from nftwl.parsing import parse_ports, parse_sources
from nftwl.planner import plan
from nftwl.ruleset import TableState, desired_table
from nftwl.transaction import Transaction

REAL_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
"""Real published address lists (read-only, outside the repository; never copy them in)."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# -- whitelists -------------------------------------------------------------------------------


def make_content(sources: Iterable[str] = (), ports: Iterable[str] = ()) -> WhitelistContent:
    """Normalised content from source and port entries, through nftwl's real parsers.

    Raises AssertionError if any entry is invalid, so a typo in a test cannot go unnoticed.
    """
    s = parse_sources("\n".join(sources), "<test sources>")
    p = parse_ports("\n".join(ports), "<test ports>")
    assert not s.errors and not p.errors, [str(e) for e in s.errors + p.errors]
    return WhitelistContent.build(s.v4, s.v6, p.ports)


Whitelists = Mapping[str, WhitelistContent | tuple[WhitelistContent, Action]]


def desired(table: str, whitelists: Whitelists, priority: int = 0) -> TableState:
    """The desired TableState for ``whitelists`` (content alone means action drop)."""
    normalised = {
        name: v if isinstance(v, tuple) else (v, Action.DROP) for name, v in whitelists.items()
    }
    return desired_table(table, normalised, priority)


def apply_whitelists(
    backend: NftablesBackend, whitelists: Whitelists, priority: int = 0
) -> Transaction:
    """Plan against the live table and apply until it matches, like the reconciler does.

    Returns the last transaction applied (the only one, unless the planner first returned an
    add-only bridge step marked ``partial``).
    """
    want = desired(backend.table, whitelists, priority)
    for _ in range(3):
        tx = plan(want, backend.read())
        backend.apply(tx)
        if not getattr(tx, "partial", False):
            return tx
    raise AssertionError("the planner kept returning partial transactions")


# -- the kernel, read and edited without nftwl ------------------------------------------------


def nft(*commands: dict[str, Any], handles: bool = False) -> dict[str, Any]:
    """Run libnftables JSON commands in one batch through a fresh context; raise on failure.

    For hand edits ("an operator did this") and independent reads. Returns the parsed output
    ({} when there was none).
    """
    import nftables

    from nftwl.nftables_backend import _LIBNFTABLES_LOCK

    ctx = nftables.Nftables()
    ctx.set_json_output(True)
    ctx.set_handle_output(handles)
    # libnftables 1.0.6 can abort the process when two contexts list at once (see backend).
    with _LIBNFTABLES_LOCK:
        rc, out, err = ctx.json_cmd({"nftables": list(commands)})
    if rc != 0:
        raise RuntimeError(f"nft failed ({rc}): {err}")
    return out if isinstance(out, dict) else {}


def list_table(family: str, name: str, handles: bool = True) -> list[dict[str, Any]]:
    """The table's JSON listing without the metainfo item (handles included by default)."""
    out = nft({"list": {"table": {"family": family, "name": name}}}, handles=handles)
    return [i for i in out.get("nftables", []) if "metainfo" not in i]


def list_table_bytes(family: str, name: str) -> str:
    """A canonical serialisation of :func:`list_table`, for byte-identity comparisons."""
    return json.dumps(list_table(family, name), sort_keys=True)


def raw_elements(table: str, set_name: str, family: str = "inet") -> list[Any]:
    """A set's elements exactly as the kernel lists them (empty list for an empty set)."""
    out = nft({"list": {"set": {"family": family, "table": table, "name": set_name}}})
    for item in out.get("nftables", []):
        if "set" in item:
            return list(item["set"].get("elem", []))
    raise AssertionError(f"set {set_name} not found in {family} {table}")


def live_networks(table: str, *set_names: str) -> set[Network]:
    """The networks held by address sets, parsed strictly from the kernel's listing.

    A plain address or a prefix converts; anything else (a range, an element with extra
    attributes) fails the test, because nftwl never writes such elements.
    """
    result: set[Network] = set()
    for name in set_names:
        for e in raw_elements(table, name):
            if isinstance(e, str):
                net = ipaddress.ip_network(e)
            elif isinstance(e, dict) and set(e) == {"prefix"}:
                net = ipaddress.ip_network(f"{e['prefix']['addr']}/{e['prefix']['len']}")
            else:
                raise AssertionError(f"non-canonical element in {name}: {e!r}")
            assert net not in result, f"{net} listed twice"
            result.add(net)
    return result


def live_family(table: str, whitelist: str, version: int) -> set[Network]:
    """Every network the kernel holds for one whitelist and address family (hosts + nets)."""
    fam = f"v{version}"
    return live_networks(table, f"{whitelist}_{fam}_hosts", f"{whitelist}_{fam}_nets")


def add_element(table: str, set_name: str, *elems: Any) -> None:
    """Hand-add elements (JSON element syntax) to a set in ``inet table``."""
    nft(
        {
            "add": {
                "element": {"family": "inet", "table": table, "name": set_name, "elem": list(elems)}
            }
        }
    )


def delete_element(table: str, set_name: str, *elems: Any) -> None:
    """Hand-delete elements (JSON element syntax) from a set in ``inet table``."""
    nft(
        {
            "delete": {
                "element": {"family": "inet", "table": table, "name": set_name, "elem": list(elems)}
            }
        }
    )


# -- traffic on loopback ----------------------------------------------------------------------


def _family(addr: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def listen_tcp(addr: str, port: int) -> socket.socket:
    """A listening TCP socket; the kernel completes handshakes without accept()."""
    s = socket.socket(_family(addr), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(64)
    return s


def listen_udp(addr: str, port: int) -> socket.socket:
    """A bound UDP socket."""
    s = socket.socket(_family(addr), socket.SOCK_DGRAM)
    s.bind((addr, port))
    return s


def connect_from(src: str, dst: str, port: int, timeout: float = 0.5) -> socket.socket:
    """A TCP connection from source address ``src``; raises what connect() raises."""
    s = socket.socket(_family(dst), socket.SOCK_STREAM)
    try:
        s.bind((src, 0))
        s.settimeout(timeout)
        s.connect((dst, port))
    except BaseException:
        s.close()
        raise
    return s


def try_connect(src: str, dst: str, port: int, timeout: float = 0.5) -> str:
    """Outcome of a TCP connect from ``src``: "ok", "timeout" (dropped) or "refused"."""
    try:
        connect_from(src, dst, port, timeout).close()
    except TimeoutError:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    return "ok"


def udp_delivered(
    receiver: socket.socket, src: str, dst: str, port: int, timeout: float = 0.3
) -> bool:
    """Send one datagram from ``src``; True if ``receiver`` got exactly that datagram."""
    payload = f"probe from {src}".encode()
    with socket.socket(_family(dst), socket.SOCK_DGRAM) as s:
        s.bind((src, 0))
        s.sendto(payload, (dst, port))
    receiver.settimeout(timeout)
    try:
        while True:
            data, _ = receiver.recvfrom(2048)
            if data == payload:
                return True
    except TimeoutError:
        return False


def add_lo_addresses(*cidrs: str) -> None:
    """Add addresses to ``lo`` (IPv6 with nodad, so they are usable at once)."""
    for cidr in cidrs:
        extra = ["nodad"] if ":" in cidr else []
        subprocess.run(["ip", "addr", "add", cidr, "dev", "lo", *extra], check=True)


# -- configuration ----------------------------------------------------------------------------


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


def write_config(
    path: Path,
    whitelists: Mapping[str, Mapping[str, Any]],
    **settings: Any,
) -> Path:
    """Write an nftwl TOML config to ``path`` (a file, or a directory to hold nftwl.toml).

    ``whitelists`` maps a name to its keys (sources, ports, action, allow_empty); ``settings``
    are top-level keys such as state_dir or invalid_input. Paths are written as given, so a
    relative one is resolved by nftwl against the config's directory. Returns the file path.
    """
    if path.is_dir():
        path = path / "nftwl.toml"
    lines = [f"{k} = {_toml_value(v)}" for k, v in settings.items()]
    for name, keys in whitelists.items():
        lines.append(f"\n[whitelists.{name}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in keys.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
