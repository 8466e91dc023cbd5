"""The suite's own safety net (tests/conftest.py) works: nothing reaches the host ruleset."""

from __future__ import annotations

import pytest

from nftwl.nftables_backend import NftablesBackend


class TestHostNamespaceGuard:
    def test_backend_in_the_host_namespace_is_refused(self) -> None:
        """A fast test (host namespace) cannot even create a libnftables context."""
        with pytest.raises(AssertionError, match="host network namespace"):
            NftablesBackend("nftwl")
