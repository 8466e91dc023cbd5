"""Real packets on loopback: nftwl's rules allow, drop and reject what they should."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from nftwl.model import Action
from nftwl.nftables_backend import NftablesBackend
from tests.kernel.helpers import (
    add_lo_addresses,
    apply_whitelists,
    connect_from,
    listen_tcp,
    listen_udp,
    make_content,
    try_connect,
    udp_delivered,
)

T = "nftwl"
PROTECTED = 8080
RANGE_PORT = 9005  # inside the protected range 9000-9010
OPEN = 8081
UDP_PORT = 5353
V4_DROP = "nftwl/1 default ipv4 drop"
V6_DROP = "nftwl/1 default ipv6 drop"


@pytest.fixture
def backend() -> NftablesBackend:
    return NftablesBackend(T)


@pytest.fixture
def v4_listeners() -> Iterator[None]:
    """TCP listeners on 127.0.0.1: a protected port, one in a protected range, an open one."""
    socks = [listen_tcp("127.0.0.1", p) for p in (PROTECTED, RANGE_PORT, OPEN)]
    yield
    for s in socks:
        s.close()


def guard(backend: NftablesBackend, sources: list[str], action: Action = Action.DROP) -> None:
    content = make_content(sources, [f"{PROTECTED}/tcp", "9000-9010/tcp", f"{UDP_PORT}/udp"])
    apply_whitelists(backend, {"default": (content, action)})


def dropped(backend: NftablesBackend, rule: str = V4_DROP) -> int:
    return backend.counters()[rule][0]


@pytest.mark.usefixtures("v4_listeners")
class TestTcpV4:
    def test_no_table_everything_connects(self) -> None:
        """Control: without nftwl's table a non-whitelisted source connects fine."""
        assert try_connect("127.0.0.3", "127.0.0.1", PROTECTED) == "ok"

    def test_whitelisted_host_connects(self, backend: NftablesBackend) -> None:
        """A source in the hosts set reaches the protected port."""
        guard(backend, ["127.0.0.2"])
        assert try_connect("127.0.0.2", "127.0.0.1", PROTECTED) == "ok"
        assert try_connect("127.0.0.2", "127.0.0.1", RANGE_PORT) == "ok"
        assert dropped(backend) == 0

    def test_whitelisted_network_connects(self, backend: NftablesBackend) -> None:
        """A source inside a whitelisted network (nets set) reaches the protected port."""
        guard(backend, ["127.0.1.0/24"])
        assert try_connect("127.0.1.77", "127.0.0.1", PROTECTED) == "ok"
        assert try_connect("127.0.2.77", "127.0.0.1", PROTECTED) == "timeout"

    def test_other_source_is_dropped_and_counted(self, backend: NftablesBackend) -> None:
        """A source not in the list times out on protected ports and the drop counter grows."""
        guard(backend, ["127.0.0.2"])
        assert dropped(backend) == 0
        assert try_connect("127.0.0.3", "127.0.0.1", PROTECTED) == "timeout"
        assert try_connect("127.0.0.3", "127.0.0.1", RANGE_PORT) == "timeout"
        assert dropped(backend) >= 2

    def test_unprotected_port_is_open(self, backend: NftablesBackend) -> None:
        """A port not in the list accepts any source."""
        guard(backend, ["127.0.0.2"])
        assert try_connect("127.0.0.3", "127.0.0.1", OPEN) == "ok"
        assert dropped(backend) == 0

    def test_reject_refuses_quickly(self, backend: NftablesBackend) -> None:
        """With action reject a non-whitelisted source gets a reset at once."""
        guard(backend, ["127.0.0.2"], Action.REJECT)
        start = time.monotonic()
        assert try_connect("127.0.0.3", "127.0.0.1", PROTECTED, timeout=2.0) == "refused"
        assert time.monotonic() - start < 0.5
        assert try_connect("127.0.0.2", "127.0.0.1", PROTECTED) == "ok"
        # TCP is answered by the reset rule, not the generic (ICMP) reject rule after it.
        assert backend.counters()["nftwl/1 default ipv4 reject tcp-reset"][0] >= 1
        assert backend.counters()["nftwl/1 default ipv4 reject"][0] == 0

    def test_established_connection_survives_removal(self, backend: NftablesBackend) -> None:
        """Removing a client from the list keeps its open connection; new ones are dropped."""
        with listen_tcp("127.0.0.1", 8090) as server:
            content = make_content(["127.0.0.2"], ["8090/tcp"])
            apply_whitelists(backend, {"default": content})
            client = connect_from("127.0.0.2", "127.0.0.1", 8090)
            conn, _ = server.accept()
            with client, conn:
                apply_whitelists(backend, {"default": make_content(["127.0.0.9"], ["8090/tcp"])})
                assert try_connect("127.0.0.2", "127.0.0.1", 8090) == "timeout"
                client.settimeout(1.0)
                conn.settimeout(1.0)
                client.sendall(b"ping")
                assert conn.recv(16) == b"ping"
                conn.sendall(b"pong")
                assert client.recv(16) == b"pong"

    def test_update_takes_effect_at_once(self, backend: NftablesBackend) -> None:
        """Adding a source to the list lets its very next connection through."""
        guard(backend, ["127.0.0.2"])
        assert try_connect("127.0.0.3", "127.0.0.1", PROTECTED) == "timeout"
        guard(backend, ["127.0.0.2", "127.0.0.3"])
        assert try_connect("127.0.0.3", "127.0.0.1", PROTECTED) == "ok"


class TestTcpV6:
    @pytest.fixture(autouse=True)
    def _addresses(self) -> Iterator[None]:
        add_lo_addresses("2001:db8::1/128", "2001:db8::2/128", "2001:db8::3/128")
        socks = [listen_tcp("2001:db8::1", PROTECTED), listen_tcp("::1", PROTECTED)]
        yield
        for s in socks:
            s.close()

    def test_v6_allow_and_drop(self, backend: NftablesBackend) -> None:
        """Over IPv6 a whitelisted source connects and another one is dropped."""
        guard(backend, ["2001:db8::2", "127.0.0.2"])
        assert try_connect("2001:db8::2", "2001:db8::1", PROTECTED) == "ok"
        assert try_connect("2001:db8::3", "2001:db8::1", PROTECTED) == "timeout"
        assert try_connect("::1", "::1", PROTECTED) == "timeout"
        assert dropped(backend, V6_DROP) >= 2
        assert dropped(backend, V4_DROP) == 0

    def test_v6_network_and_reject(self, backend: NftablesBackend) -> None:
        """An IPv6 network entry allows its members; reject answers the others at once."""
        guard(backend, ["2001:db8::2/127"], Action.REJECT)
        assert try_connect("2001:db8::3", "2001:db8::1", PROTECTED) == "ok"
        # A TCP reset, not an ICMPv6 error (which loopback only acts on at the SYN
        # retransmission, ~1 s later): refused at once.
        start = time.monotonic()
        assert try_connect("::1", "::1", PROTECTED, timeout=3.0) == "refused"
        assert time.monotonic() - start < 0.5

    def test_v4_entry_does_not_open_v6(self, backend: NftablesBackend) -> None:
        """A v4-only whitelist still guards IPv6 (nothing over v6 is allowed)."""
        guard(backend, ["127.0.0.0/8"])
        assert try_connect("2001:db8::2", "2001:db8::1", PROTECTED) == "timeout"


class TestUdp:
    def test_udp_from_other_source_not_received(self, backend: NftablesBackend) -> None:
        """Datagrams to a protected UDP port arrive only from whitelisted sources."""
        with listen_udp("127.0.0.1", UDP_PORT) as rx:
            guard(backend, ["127.0.0.2"])
            assert udp_delivered(rx, "127.0.0.2", "127.0.0.1", UDP_PORT)
            before = dropped(backend)
            assert not udp_delivered(rx, "127.0.0.3", "127.0.0.1", UDP_PORT)
            assert dropped(backend) == before + 1

    def test_udp_reject_answers_with_port_unreachable(self, backend: NftablesBackend) -> None:
        """With action reject a datagram from another source is answered with an ICMP error."""
        with listen_udp("127.0.0.1", UDP_PORT) as rx:
            guard(backend, ["127.0.0.2"], Action.REJECT)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.3", 0))
                s.connect(("127.0.0.1", UDP_PORT))
                s.settimeout(0.5)
                s.send(b"probe")
                with pytest.raises(ConnectionRefusedError):
                    s.recv(16)
            assert udp_delivered(rx, "127.0.0.2", "127.0.0.1", UDP_PORT)

    def test_tcp_only_port_leaves_udp_open(self, backend: NftablesBackend) -> None:
        """A port protected for tcp only does not filter udp to the same number."""
        with listen_udp("127.0.0.1", PROTECTED) as rx:
            guard(backend, ["127.0.0.2"])
            assert udp_delivered(rx, "127.0.0.3", "127.0.0.1", PROTECTED)
            assert dropped(backend) == 0
