"""The Backend protocol: the only thing that talks to the kernel.

Three implementations: :mod:`nftwl.nftables_backend` (libnftables JSON), the in-memory
:mod:`nftwl.fake` used by tests and ``--dry-run``, and (later) an iptables+ipset one.
"""

from __future__ import annotations

from typing import Protocol

from nftwl.ruleset import TableState
from nftwl.transaction import Transaction


class Backend(Protocol):
    """Reads nftwl's live table and applies transactions to it, all or nothing."""

    table: str

    def read(self) -> TableState | None:
        """The live table, or None if it does not exist. Reads only nftwl's own table."""
        ...

    def apply(self, tx: Transaction) -> None:
        """Apply ``tx`` atomically. Raises TransactionError; then nothing of it took effect."""
        ...

    def present(self) -> bool:
        """Whether nftwl's table and base chain exist (cheap: no set contents are read)."""
        ...

    def counters(self) -> dict[str, tuple[int, int]]:
        """Rule comment -> (packets, bytes) of nftwl's rules, for status and metrics."""
        ...
