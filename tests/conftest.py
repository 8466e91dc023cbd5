"""Guards for the whole test suite.

1. No libnftables call may reach this machine's own ruleset. A libnftables context keeps the
   netlink socket of the network namespace it was created in, even if the thread moves later,
   so every context is checked: it must be created outside the namespace pytest started in,
   and used only in the namespace it was created in. A violation fails the test before
   anything is sent.
2. In CI (``CI`` set) a skipped test is a failure: kernel tests run as root there, so a skip
   can only mean something is broken.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import nftables
import pytest

from tests.netns import HOST_NETNS


def _current_netns() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


class HostNamespaceError(AssertionError):
    pass


_original_init = nftables.Nftables.__init__
_original_json_cmd = nftables.Nftables.json_cmd
_original_cmd = nftables.Nftables.cmd


def _guarded_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    # Refused in __new__, so no half-built object reaches the binding's __del__.
    if _current_netns() == HOST_NETNS:
        raise HostNamespaceError(
            "a libnftables context was created in the host network namespace; kernel tests "
            "must run inside the netns fixture (tests/kernel/)"
        )
    return object.__new__(cls)


def _guarded_init(self: Any, *args: Any, **kwargs: Any) -> None:
    self._nftwl_test_netns = _current_netns()
    _original_init(self, *args, **kwargs)


def _check(self: Any) -> None:
    ns = _current_netns()
    if ns == HOST_NETNS or ns != getattr(self, "_nftwl_test_netns", None):
        raise HostNamespaceError("a libnftables context was used outside its test namespace")


def _guarded_json_cmd(self: Any, *args: Any, **kwargs: Any) -> Any:
    _check(self)
    return _original_json_cmd(self, *args, **kwargs)


def _guarded_cmd(self: Any, *args: Any, **kwargs: Any) -> Any:
    _check(self)
    return _original_cmd(self, *args, **kwargs)


nftables.Nftables.__new__ = _guarded_new  # type: ignore[method-assign,assignment]
nftables.Nftables.__init__ = _guarded_init  # type: ignore[method-assign]
nftables.Nftables.json_cmd = _guarded_json_cmd  # type: ignore[method-assign]
nftables.Nftables.cmd = _guarded_cmd  # type: ignore[method-assign]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    in_ci = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
    if in_ci and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which counts as a failure: {report.longrepr}"
