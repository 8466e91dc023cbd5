"""Kernel tests: real nftables, each test in its own throwaway network namespace.

They need root. In CI (``CI`` set) a missing privilege is a failure, never a skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.netns import fresh_netns


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/kernel/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.kernel)


@pytest.fixture(autouse=True)
def netns() -> Iterator[int]:
    """Every kernel test runs in a fresh network namespace (loopback up, no ruleset)."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("kernel tests need root; CI runs as root, so this is a failure")
        pytest.skip("kernel tests need root (they run in a throwaway network namespace)")
    with fresh_netns() as inode:
        yield inode
