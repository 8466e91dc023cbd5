"""The Source protocol and what a source hands to the reconciler."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from nftwl.errors import InputProblem
from nftwl.model import WhitelistContent


@dataclass
class LoadResult:
    """One whitelist as read from its source right now.

    ``content`` holds what the good lines say; ``errors`` what the bad ones were. ``unavailable``
    means the input could not be read at all (missing file, absent key): never taken as empty.
    """

    content: WhitelistContent = field(default_factory=WhitelistContent)
    errors: list[InputProblem] = field(default_factory=list)
    notices: list[InputProblem] = field(default_factory=list)
    unavailable: str | None = None


class Source(Protocol):
    """Yields whitelist content and says when it may have changed."""

    def load(self) -> dict[str, LoadResult]:
        """Read every configured whitelist now (from disk, Redis, ...)."""
        ...

    def changes(self, stop: threading.Event, tick_ms: int) -> Iterator[bool]:
        """Block until something may have changed (yield True) or ``tick_ms`` passed (False).

        Returns when ``stop`` is set. A True is a hint, not a promise: the reconciler reloads and
        compares, so a spurious wake-up costs a read, never a kernel write.
        """
        ...
