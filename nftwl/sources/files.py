"""Whitelists from files, watched with watchfiles.

The *directories* holding the files are watched, not the files: an editor or confd that
replaces a file by rename gives it a new inode, which a watch on the file itself loses. Events
count only when they name a configured file or ``..data`` (the symlink Kubernetes swaps when a
ConfigMap changes; the data file itself is never named then). Everything else in the
directory, such as confd's stage files ``.<name><digits>``, editor swap and backup files,
is ignored: a batch of only such events is a mere timer tick, never a change, so it never
causes a kernel write.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import watchfiles

from nftwl.model import WhitelistContent
from nftwl.parsing import Parsed, parse_ports, parse_sources
from nftwl.sources.base import LoadResult

log = logging.getLogger(__name__)

CONFIGMAP_LINK = "..data"
MAX_FILE_BYTES = 64 * 1024 * 1024


def read_text(path: Path) -> str:
    """Read an input file as UTF-8 text. Raises OSError or ValueError with a usable message."""
    # O_NONBLOCK: opening a FIFO put in place of the file must not hang the daemon (a blocked
    # open() ignores SIGTERM). Anything but a regular file is refused before reading.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ValueError("not a regular file")
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start})") from None


def _parse_file(path: Path, parse: Callable[[str, str], Parsed]) -> Parsed | str:
    """Parsed content, or the reason the file could not be read."""
    try:
        text = read_text(path)
    except FileNotFoundError:
        return f"{path}: file not found"
    except (OSError, ValueError) as exc:
        return f"{path}: cannot read: {exc}"
    return parse(text, str(path))


def load_files(sources: Path, ports: Path) -> LoadResult:
    """Read and parse one whitelist's two files."""
    parsed_sources = _parse_file(sources, parse_sources)
    parsed_ports = _parse_file(ports, parse_ports)
    unreadable = [p for p in (parsed_sources, parsed_ports) if isinstance(p, str)]
    if unreadable:
        return LoadResult(unavailable="; ".join(unreadable))
    assert isinstance(parsed_sources, Parsed) and isinstance(parsed_ports, Parsed)
    truncated = [
        f"{path}: {p.truncated}"
        for path, p in ((sources, parsed_sources), (ports, parsed_ports))
        if p.truncated
    ]
    if truncated:
        return LoadResult(unavailable="; ".join(truncated))
    return LoadResult(
        # Both halves are normalised already; combining them needs no second collapse.
        content=WhitelistContent(
            parsed_sources.collapsed.v4, parsed_sources.collapsed.v6, parsed_ports.collapsed.ports
        ),
        errors=parsed_sources.errors + parsed_ports.errors,
        notices=parsed_sources.notices + parsed_ports.notices,
    )


class FileSource:
    """Whitelists configured as (sources file, ports file) pairs."""

    def __init__(self, files: dict[str, tuple[Path, Path]], debounce_ms: int = 300) -> None:
        self.files = files
        self.debounce_ms = debounce_ms
        self.names: dict[Path, set[str]] = {}
        """Configured directory (as written) -> the file names in it that count."""
        for pair in files.values():
            for path in pair:
                self.names.setdefault(path.parent, {CONFIGMAP_LINK}).add(path.name)
        self.relevant: dict[Path, set[str]] = {}
        self._resolve()

    def _resolve(self) -> list[Path]:
        """Map each configured directory, and what it resolves to now (it may be a symlink
        that was swapped), to its file names; return the directories to watch."""
        for parent, names in self.names.items():
            for d in (parent, parent.resolve()):
                self.relevant.setdefault(d, set()).update(names)
        return sorted({p.resolve() for p in self.names})

    def load(self) -> dict[str, LoadResult]:
        return {name: load_files(*pair) for name, pair in self.files.items()}

    def is_relevant(self, change: watchfiles.Change, path: str) -> bool:
        p = Path(path)
        return p.name in self.relevant.get(p.parent, ())

    def changes(self, stop: threading.Event, tick_ms: int) -> Iterator[bool]:
        missing = [d for d in self.names if not d.is_dir()]
        if missing:
            raise FileNotFoundError(f"watched directory does not exist: {missing[0]}")
        reload = False
        while not stop.is_set():
            # Identity of the configured paths (stat follows symlinks): changes when a directory
            # is removed and re-created, or a symlinked directory is pointed elsewhere.
            identity = _identities(list(self.names))
            yield from self._watch(self._resolve(), identity, stop, tick_ms, reload)
            if stop.is_set():
                return
            # The inotify watch went with the old directory. Wait until the configured ones
            # exist again, then watch them and reload (the files may have changed meanwhile).
            log.warning("a watched directory was removed or replaced; watching it again")
            while not stop.is_set() and not all(d.is_dir() for d in self.names):
                yield False
                stop.wait(tick_ms / 1000)
            reload = True

    def _watch(
        self,
        dirs: list[Path],
        identity: list[tuple[int, int]],
        stop: threading.Event,
        tick_ms: int,
        reload: bool,
    ) -> Iterator[bool]:
        """Yield until ``stop`` or until a configured directory's identity changes. ``reload``
        makes the first yield True, once the new watch is in place (not before, or changes
        made meanwhile would be missed)."""
        # Filtered here, not by watchfiles: watchfiles swallows a batch of only irrelevant events
        # without yielding, and its timeout restarts with every batch, so a directory that never
        # goes quiet (confd writing stage files) would starve the daemon of ticks: an allowed
        # empty list would never settle, drift would never be repaired. Such a batch is a tick.
        batches = watchfiles.watch(
            *dirs,
            watch_filter=None,
            debounce=max(self.debounce_ms, 50),
            step=50,
            stop_event=stop,
            rust_timeout=tick_ms,
            yield_on_timeout=True,
            recursive=False,
            raise_interrupt=False,
        )
        try:
            for batch in batches:
                if stop.is_set():
                    return
                relevant = sorted((c.name, p) for c, p in batch if self.is_relevant(c, p))
                if relevant:
                    log.debug("file events: %s", relevant)
                yield bool(relevant) or reload
                reload = False
                if _identities(list(self.names)) != identity:
                    return
        except OSError as exc:
            # The directory vanished again before the watch was set up ("No path was found").
            log.warning("watch lost: %s", exc)


def _identities(dirs: list[Path]) -> list[tuple[int, int]]:
    """(device, inode) of each directory; (0, 0) for one that is gone."""
    out = []
    for d in dirs:
        try:
            st = d.stat()
        except OSError:
            out.append((0, 0))
        else:
            out.append((st.st_dev, st.st_ino))
    return out
