"""Run code inside a throwaway network namespace, without leaving the test process.

Linux keeps the network namespace per thread: ``unshare(CLONE_NEWNET)`` moves only the calling
thread into a new, empty namespace, and threads and child processes it starts afterwards are
born there too. Sockets belong to the namespace they were created in, and so does a
libnftables context (it opens its netlink socket when created): a context created inside the
block works on the new namespace only, one created before it would still reach the old one.
tests/conftest.py therefore refuses any context created in the host namespace or used outside
the namespace it was created in. On exit the thread switches back with ``setns`` and the
namespace disappears with its last user.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _ns_inode() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


HOST_NETNS = os.stat("/proc/self/ns/net").st_ino
"""The namespace the test process started in, recorded at import."""


class NamespaceError(RuntimeError):
    pass


@contextlib.contextmanager
def fresh_netns() -> Iterator[int]:
    """Enter a new network namespace (loopback up) for the duration of the block.

    Yields the namespace's inode. Raises NamespaceError (and never runs the block) if the
    thread could not be moved: a kernel test must never run in the host's namespace.
    """
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    host_inode = _ns_inode()
    try:
        if _libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NamespaceError(f"unshare(CLONE_NEWNET) failed: {os.strerror(err)}")
        inode = _ns_inode()
        if inode == host_inode:
            raise NamespaceError("still in the original network namespace after unshare")
        try:
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
            yield inode
        finally:
            if _libc.setns(original, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise NamespaceError(f"setns back failed: {os.strerror(err)}")
    finally:
        os.close(original)
