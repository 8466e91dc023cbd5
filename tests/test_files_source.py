"""The file source without the kernel: which events count, how files are read, and the watcher."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from watchfiles import Change

from nftwl.sources.files import FileSource, load_files

IPS = "whiteiplist.txt"
PORTS = "whiteportlist.txt"


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / IPS).write_text("192.0.2.10\n", encoding="utf-8")
    (tmp_path / PORTS).write_text("22/tcp\n", encoding="utf-8")
    return tmp_path / IPS, tmp_path / PORTS


@pytest.fixture
def source(files: tuple[Path, Path]) -> FileSource:
    return FileSource({"default": files}, debounce_ms=50)


class TestIsRelevant:
    @pytest.mark.parametrize("name", [IPS, PORTS, "..data"])
    @pytest.mark.parametrize("change", list(Change))
    def test_configured_names_and_configmap_link_pass(
        self, source: FileSource, tmp_path: Path, name: str, change: Change
    ) -> None:
        """Any event naming a configured file or ``..data`` in its directory counts."""
        assert source.is_relevant(change, str(tmp_path / name))

    @pytest.mark.parametrize(
        "name",
        [
            ".whiteiplist.txt123456",  # confd stage file
            ".whiteportlist.txt483920175",
            "x.swp",
            ".whiteiplist.txt.swp",  # vim swap file
            "whiteiplist.txt~",  # vim / emacs backup
            "x~",
            "4913",  # vim's write test file
            ".#x",  # emacs lock file
            ".#whiteiplist.txt",
            "..2026_01_01_00_00_00.1",  # ConfigMap timestamped directory
            "..data_tmp",
            "whiteiplist.txt.bak",
            "nftwl.toml",
        ],
    )
    def test_other_files_are_ignored(self, source: FileSource, tmp_path: Path, name: str) -> None:
        """Stage, swap, backup and lock files next to the whitelists never count."""
        for change in Change:
            assert not source.is_relevant(change, str(tmp_path / name))

    def test_events_from_other_directories_are_ignored(
        self, source: FileSource, tmp_path: Path
    ) -> None:
        """A configured name in another directory (sub, parent, sibling) does not count."""
        for other in (tmp_path / "sub", tmp_path.parent, tmp_path.parent / "elsewhere"):
            for name in (IPS, PORTS, "..data"):
                assert not source.is_relevant(Change.modified, str(other / name))

    def test_events_under_the_resolved_directory_pass(self, tmp_path: Path) -> None:
        """Configured through a symlinked directory, events under its real path still count."""
        real = tmp_path / "real"
        real.mkdir()
        (tmp_path / "link").symlink_to(real)
        src = FileSource({"default": (tmp_path / "link" / IPS, tmp_path / "link" / PORTS)})
        assert src.is_relevant(Change.added, str(real / IPS))
        assert src.is_relevant(Change.added, str(tmp_path / "link" / PORTS))
        assert not src.is_relevant(Change.added, str(real / ".whiteiplist.txt1"))


class TestLoadFiles:
    def test_good_files_load(self, files: tuple[Path, Path]) -> None:
        """Readable files give their parsed content and no reason to hold."""
        r = load_files(*files)
        assert r.unavailable is None
        assert [str(n) for n in r.content.v4] == ["192.0.2.10/32"]
        assert [str(p) for p in r.content.ports] == ["22/tcp"]

    @pytest.mark.parametrize("which", [0, 1])
    def test_missing_file_is_unavailable(self, files: tuple[Path, Path], which: int) -> None:
        """A missing sources or ports file makes the whitelist unavailable, never empty."""
        files[which].unlink()
        r = load_files(*files)
        assert r.unavailable is not None
        assert str(files[which]) in r.unavailable and "not found" in r.unavailable
        assert not r.content.has_sources and not r.content.ports

    def test_non_utf8_file_is_unavailable_with_reason(self, files: tuple[Path, Path]) -> None:
        """A file that is not UTF-8 is unavailable, and the reason says so and where."""
        files[0].write_bytes(b"192.0.2.10\n\xff\xfe 10.0.0.1\n")
        r = load_files(*files)
        assert r.unavailable is not None
        assert str(files[0]) in r.unavailable
        assert "not UTF-8" in r.unavailable and "byte 11" in r.unavailable

    def test_empty_file_is_available_and_empty(self, files: tuple[Path, Path]) -> None:
        """An empty file is content (an empty list), unlike a missing one."""
        files[0].write_bytes(b"")
        r = load_files(*files)
        assert r.unavailable is None
        assert not r.content.has_sources

    def test_bad_line_is_an_error_not_unavailability(self, files: tuple[Path, Path]) -> None:
        """A bad line is reported with its file and line; the good lines still load."""
        files[0].write_text("192.0.2.10\nnot-an-address\n", encoding="utf-8")
        r = load_files(*files)
        assert r.unavailable is None
        assert [e.line for e in r.errors] == [2]
        assert r.errors[0].origin == str(files[0])
        assert [str(n) for n in r.content.v4] == ["192.0.2.10/32"]


class Watcher:
    """Runs FileSource.changes in a thread and records (time, changed) for every item."""

    def __init__(self, source: FileSource, tick_ms: int = 100) -> None:
        self.items: list[tuple[float, bool]] = []
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(source, tick_ms), daemon=True)

    def _run(self, source: FileSource, tick_ms: int) -> None:
        try:
            for changed in source.changes(self.stop, tick_ms):
                self.items.append((time.monotonic(), changed))
        except BaseException as exc:
            self.error = exc

    def since(self, t: float) -> list[bool]:
        return [changed for at, changed in list(self.items) if at > t]

    def wait(self, predicate: object, timeout: float, what: str) -> None:
        assert callable(predicate)
        deadline = time.monotonic() + timeout
        while not predicate():
            assert self.error is None, repr(self.error)
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.01)


@pytest.fixture
def watcher(source: FileSource) -> Iterator[Watcher]:
    w = Watcher(source)
    w.thread.start()
    w.wait(lambda: w.items, 5, "the first tick (watcher running)")
    yield w
    w.stop.set()
    w.thread.join(5)


class TestChanges:
    def test_write_to_configured_file_yields_true(
        self, watcher: Watcher, files: tuple[Path, Path]
    ) -> None:
        """An in-place write to a configured file is reported as a change."""
        t = time.monotonic()
        files[0].write_text("192.0.2.11\n", encoding="utf-8")
        watcher.wait(lambda: True in watcher.since(t), 3, "a change")

    def test_rename_over_configured_file_keeps_being_watched(
        self, watcher: Watcher, files: tuple[Path, Path], tmp_path: Path
    ) -> None:
        """Every rename over a configured file is reported, not just the first (FC-02)."""
        for n in range(3):
            t = time.monotonic()
            (tmp_path / ".new").write_text(f"192.0.2.{n}\n", encoding="utf-8")
            os.rename(tmp_path / ".new", files[0])
            watcher.wait(lambda t=t: True in watcher.since(t), 3, f"change {n}")

    def test_stage_and_editor_files_yield_only_ticks(
        self, watcher: Watcher, tmp_path: Path
    ) -> None:
        """Stage, swap and backup files never yield a change, only ticks (False)."""
        t = time.monotonic()
        for n in range(20):
            for name in (f".whiteiplist.txt{n}1234", f".{PORTS}.swp", "4913", f"{IPS}~"):
                (tmp_path / name).write_text("198.51.100.66\n", encoding="utf-8")
                (tmp_path / name).unlink()
            time.sleep(0.01)
        watcher.wait(lambda: watcher.since(t).count(False) >= 3, 3, "ticks after the writes")
        assert True not in watcher.since(t)

    def test_busy_directory_still_ticks(self, watcher: Watcher, tmp_path: Path) -> None:
        """Irrelevant events arriving faster than the tick still let ticks through, so the
        daemon keeps control (settle timers, drift checks) while confd keeps writing."""
        t = time.monotonic()
        end = t + 1.0
        while time.monotonic() < end:
            (tmp_path / ".whiteiplist.txt99").write_text("x\n", encoding="utf-8")
            (tmp_path / ".whiteiplist.txt99").unlink()
            time.sleep(0.02)
        during = [c for at, c in list(watcher.items) if t < at <= end]
        assert during.count(False) >= 3, f"only {len(during)} items in 1 s of stage-file events"
        assert True not in during

    def test_returns_when_stop_is_set(self, watcher: Watcher) -> None:
        """Setting the stop event ends the generator promptly."""
        watcher.stop.set()
        watcher.thread.join(2)
        assert not watcher.thread.is_alive()
        assert watcher.error is None

    def test_missing_directory_raises(self, tmp_path: Path) -> None:
        """A whitelist in a directory that does not exist is an error, not a silent no-op."""
        gone = tmp_path / "gone"
        src = FileSource({"default": (gone / IPS, gone / PORTS)})
        with pytest.raises(FileNotFoundError, match="gone"):
            next(src.changes(threading.Event(), 100))


class TestSpecialFiles:
    def test_fifo_in_place_of_a_whitelist_does_not_hang(self, tmp_path: Path) -> None:
        """A FIFO is refused at once (a blocking open would hang the daemon past SIGTERM)."""
        fifo = tmp_path / "whiteiplist.txt"
        os.mkfifo(fifo)
        (tmp_path / "whiteportlist.txt").write_text("22\n")
        result = load_files(fifo, tmp_path / "whiteportlist.txt")
        assert result.unavailable is not None
        assert "not a regular file" in result.unavailable

    def test_directory_in_place_of_a_whitelist_is_unavailable(self, tmp_path: Path) -> None:
        """A directory where the file should be is reported, never read as empty."""
        (tmp_path / "whiteiplist.txt").mkdir()
        (tmp_path / "whiteportlist.txt").write_text("22\n")
        result = load_files(tmp_path / "whiteiplist.txt", tmp_path / "whiteportlist.txt")
        assert result.unavailable is not None


class TestWatchedDirectoryReplaced:
    def test_removed_and_recreated_directory_is_watched_again(self, tmp_path: Path) -> None:
        """After 'rm -rf dir; mkdir dir' the watcher follows the new directory: a later write
        in it is reported (the old inotify watch died with the old directory)."""
        d = tmp_path / "etc"
        d.mkdir()
        (d / "a.txt").write_text("192.0.2.1\n")
        (d / "p.txt").write_text("22\n")
        source = FileSource({"x": (d / "a.txt", d / "p.txt")}, 50)
        stop = threading.Event()
        seen: list[float] = []

        def follow() -> None:
            for changed in source.changes(stop, 100):
                if changed:
                    seen.append(time.monotonic())

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        try:
            time.sleep(0.4)
            shutil.rmtree(d)
            time.sleep(0.4)
            d.mkdir()
            time.sleep(0.6)
            written = time.monotonic()
            (d / "a.txt").write_text("192.0.2.2\n")
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and not any(t > written for t in seen):
                time.sleep(0.05)
        finally:
            stop.set()
            thread.join(timeout=5)
        assert any(t > written for t in seen), "the write in the new directory went unseen"


class TestTruncatedInput:
    def test_file_past_the_error_limit_is_refused_even_when_lenient(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A port file whose parsing stopped early is unavailable as a whole: applying the
        good lines read so far would silently unprotect the ports after the cut."""
        monkeypatch.setattr("nftwl.parsing.MAX_ERRORS", 5)
        (tmp_path / "a.txt").write_text("192.0.2.1\n")
        (tmp_path / "p.txt").write_text("80\n" + "x\n" * 50 + "22/tcp\n")
        result = load_files(tmp_path / "a.txt", tmp_path / "p.txt")
        assert result.unavailable is not None
        assert "more than 5 bad lines" in result.unavailable


class TestSymlinkedDirectory:
    def test_repointed_symlinked_directory_is_followed(self, tmp_path: Path) -> None:
        """A configured directory that is a symlink (a deploy switch: cur -> rel1, then
        cur -> rel2, rel1 removed) is watched at its new target afterwards."""
        for rel in ("rel1", "rel2"):
            (tmp_path / rel).mkdir()
            (tmp_path / rel / "a.txt").write_text("192.0.2.1\n")
            (tmp_path / rel / "p.txt").write_text("22\n")
        os.symlink("rel1", tmp_path / "cur")
        cur = tmp_path / "cur"
        source = FileSource({"x": (cur / "a.txt", cur / "p.txt")}, 50)
        stop = threading.Event()
        changes = source.changes(stop, 100)
        assert next(changes) is False
        os.symlink("rel2", tmp_path / "cur.tmp")
        os.replace(tmp_path / "cur.tmp", cur)
        shutil.rmtree(tmp_path / "rel1")
        seen = [next(changes) for _ in range(10)]
        (tmp_path / "rel2" / "a.txt").write_text("192.0.2.2\n")
        deadline = time.monotonic() + 3
        late: list[bool] = []
        while time.monotonic() < deadline and True not in late:
            late.append(next(changes))
        stop.set()
        assert True in seen, "the switch itself must cause a reload"
        assert True in late, "an edit in the new target went unseen"
