"""The namespace fixture itself: kernel tests must be isolated from the host."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.netns import HOST_NETNS


class TestFreshNetns:
    def test_runs_outside_the_host_namespace(self, netns: int) -> None:
        """The test thread is in a namespace other than the one pytest started in."""
        assert netns != HOST_NETNS
        assert os.stat("/proc/thread-self/ns/net").st_ino == netns

    def test_children_inherit_the_namespace(self, netns: int) -> None:
        """A subprocess started by the test sees only the test namespace's interfaces."""
        out = subprocess.run(
            ["ip", "-o", "link", "show"], capture_output=True, text=True, check=True
        ).stdout
        assert [line.split(":")[1].strip() for line in out.splitlines()] == ["lo"]
        inode = os.stat(f"/proc/{os.getpid()}/task/{os.getpid()}/ns/net").st_ino
        assert inode == netns

    def test_context_is_refused_outside_its_namespace(self, netns: int) -> None:
        """A libnftables context created in one test namespace cannot be used from another
        (a context keeps the socket of the namespace it was born in)."""
        from nftwl.nftables_backend import NftablesBackend
        from tests.netns import fresh_netns

        backend = NftablesBackend("nftwl")
        assert backend.read() is None
        with fresh_netns(), pytest.raises(AssertionError, match="outside its test namespace"):
            backend.read()
