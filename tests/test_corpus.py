"""Crawling a folder: what is indexed, what is skipped and why."""

from __future__ import annotations

import builtins
import codecs
import os
import random
import shutil
import stat
import sys
import traceback
import tracemalloc
from pathlib import Path

import pytest

from nashcli import corpus, documents
from nashcli.corpus import (
    DEFAULT_MAX_BYTES,
    FileEntry,
    Skipped,
    check_file,
    crawl,
    format_size,
    parse_size,
)
from nashcli.documents import UnreadableFile, content_hash, read_text
from nashcli.errors import NashError
from nashcli.names import visible


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def indexed(root: Path, **kw) -> list[str]:
    """Root-relative POSIX paths of the files crawl would index."""
    return [
        e.path.relative_to(root).as_posix() for e in crawl(root, **kw) if isinstance(e, FileEntry)
    ]


def skipped(root: Path, **kw) -> dict[str, str]:
    """Root-relative path → reason, for the files crawl skipped."""
    return {
        e.path.relative_to(root).as_posix(): e.reason
        for e in crawl(root, **kw)
        if isinstance(e, Skipped)
    }


# --------------------------------------------------------------------------------------------
# What gets crawled


def test_crawl_finds_text_files_recursively_in_sorted_order(tmp_path: Path) -> None:
    write(tmp_path / "b.md", "# B\n")
    write(tmp_path / "a.txt", "a\n")
    write(tmp_path / "sub" / "z.rst", "z\n")
    write(tmp_path / "sub" / "deeper" / "c.org", "* c\n")
    write(tmp_path / "NOTES", "plain text without an extension\n")
    write(tmp_path / "photo.jpg", b"\xff\xd8\xff\xe0")
    write(tmp_path / "script.py", "print('hi')\n")
    assert indexed(tmp_path) == ["NOTES", "a.txt", "b.md", "sub/deeper/c.org", "sub/z.rst"]
    # non-document types are left out silently, not reported as skipped
    assert skipped(tmp_path) == {}


def test_deep_tree_beyond_the_recursion_limit(tmp_path: Path) -> None:
    """A tree deeper than the recursion limit is crawled (the walk keeps its own stack).

    The limit is lowered for the crawl instead of building a tree deeper than 1000 levels:
    pytest's own clean-up of old temporary folders (shutil.rmtree) recurses per level.
    """
    depth = 300
    deep = tmp_path
    for _ in range(depth):
        deep = deep / "d"
        deep.mkdir()
    write(deep / "bottom.md", "found\n")
    write(tmp_path / "top.md", "top\n")
    frames_in_use = len(traceback.extract_stack())
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(frames_in_use + depth // 2)  # a walk recursing per level runs out
    try:
        found = indexed(tmp_path)
    finally:
        sys.setrecursionlimit(limit)
    assert found == ["/".join(["d"] * depth + ["bottom.md"]), "top.md"]


def test_file_entries_carry_size_and_mtime(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "hello\n")
    os.utime(path, ns=(1_000_000_000, 1_234_567_890_123))
    (entry,) = crawl(tmp_path)
    assert entry == FileEntry(path, 6, 1_234_567_890_123)


def test_extensions_can_be_widened(tmp_path: Path) -> None:
    write(tmp_path / "table.csv", "a,b\n1,2\n")
    assert indexed(tmp_path) == []
    assert indexed(tmp_path, extensions=corpus.TEXT_EXTENSIONS | {".CSV"}) == ["table.csv"]


def test_root_may_be_a_single_file_and_must_exist(tmp_path: Path) -> None:
    path = write(tmp_path / "one.txt", "one\n")
    assert [e.path for e in crawl(path)] == [path]
    with pytest.raises(NashError, match="no such file or folder"):
        list(crawl(tmp_path / "missing"))


def test_hidden_files_and_folders_and_git_are_skipped(tmp_path: Path) -> None:
    write(tmp_path / ".hidden.txt", "secret\n")
    write(tmp_path / ".obsidian" / "workspace.md", "ui state\n")
    write(tmp_path / ".git" / "description", "Unnamed repository\n")
    write(tmp_path / ".git" / "COMMIT_EDITMSG", "fix\n")
    write(tmp_path / "visible.md", "hello\n")
    assert indexed(tmp_path) == ["visible.md"]
    assert skipped(tmp_path) == {}


def test_gitignore_nested_relative_and_negated(tmp_path: Path) -> None:
    write(tmp_path / ".gitignore", "*.log.txt\nbuild/\ndrafts/*\n!drafts/keep.md\n/top.txt\n")
    write(tmp_path / "app.log.txt", "log\n")
    write(tmp_path / "build" / "out.txt", "built\n")
    write(tmp_path / "drafts" / "old.md", "old\n")
    write(tmp_path / "drafts" / "keep.md", "keep\n")
    write(tmp_path / "top.txt", "anchored to the root\n")
    write(tmp_path / "sub" / "top.txt", "not anchored here\n")
    # a nested .gitignore: its patterns are relative to its own folder, and it can re-include
    write(tmp_path / "sub" / ".gitignore", "secret*.md\n!*.log.txt\n")
    write(tmp_path / "sub" / "secret-plan.md", "plan\n")
    write(tmp_path / "sub" / "debug.log.txt", "re-included by the nested file\n")
    write(tmp_path / "other" / "secret-plan.md", "the nested rule does not reach here\n")
    assert indexed(tmp_path) == [
        "drafts/keep.md",
        "other/secret-plan.md",
        "sub/debug.log.txt",
        "sub/top.txt",
    ]


def test_gitignore_cannot_reinclude_inside_an_ignored_folder(tmp_path: Path) -> None:
    # git's rule: a file cannot be re-included if a parent folder is excluded
    write(tmp_path / ".gitignore", "private/\n!private/ok.md\n")
    write(tmp_path / "private" / "ok.md", "ok\n")
    write(tmp_path / "public.md", "public\n")
    assert indexed(tmp_path) == ["public.md"]


def test_nashignore_adds_rules_and_overrides_gitignore(tmp_path: Path) -> None:
    write(tmp_path / ".gitignore", "generated.md\n")
    write(tmp_path / ".nashignore", "journal/\n!generated.md\n")
    write(tmp_path / "generated.md", "ignored by git, wanted by nash\n")
    write(tmp_path / "journal" / "2024-01-01.md", "private\n")
    write(tmp_path / "notes.md", "notes\n")
    write(tmp_path / "deep" / ".nashignore", "*.txt\n")
    write(tmp_path / "deep" / "x.txt", "x\n")
    write(tmp_path / "deep" / "y.md", "y\n")
    assert indexed(tmp_path) == ["deep/y.md", "generated.md", "notes.md"]


def test_ignore_matcher_and_check_file_agree_with_crawl(tmp_path: Path) -> None:
    """The single-path API (for a watcher) gives the verdicts a crawl gives."""
    write(tmp_path / ".gitignore", "build/\n*.tmp.md\n")
    write(tmp_path / "a" / ".nashignore", "private*\n!private-ok.md\n")
    for rel in [
        "keep.md",
        "x.tmp.md",
        "build/out.md",
        "a/private.md",
        "a/private-ok.md",
        "a/b/note.txt",
        "a/.hidden/secret.md",
        "pic.png",
        "README",
    ]:
        write(tmp_path / rel, f"{rel}\n")
    write(tmp_path / "a" / "empty.md", b"")
    found = {item.path: item for item in crawl(tmp_path)}
    matcher = corpus.IgnoreMatcher(tmp_path)
    every_file = [Path(d) / f for d, _, files in os.walk(tmp_path) for f in files]
    assert len(every_file) == 12
    for path in every_file:
        assert matcher.is_ignored(path) == (path not in found), path
        if path in found:
            assert corpus.check_file(path) == found[path]
    assert matcher.is_ignored(tmp_path / "build", is_dir=True)
    assert not matcher.is_ignored(tmp_path / "a", is_dir=True)
    assert matcher.is_ignored(tmp_path.parent / "elsewhere.md")


# --------------------------------------------------------------------------------------------
# What gets skipped, with a reason


def test_binary_and_empty_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    write(tmp_path / "image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    write(tmp_path / "blob", bytes(range(256)) * 4)
    write(tmp_path / "empty.md", b"")
    write(tmp_path / "ok.md", "fine\n")
    assert skipped(tmp_path) == {
        "image.txt": "binary file",
        "blob": "binary file",
        "empty.md": "empty file",
    }
    assert indexed(tmp_path) == ["ok.md"]


def test_files_known_unchanged_are_not_opened_again(tmp_path: Path, monkeypatch) -> None:
    """An update of a large folder must not read a block of every file: a file whose size and
    mtime match what the index recorded was sniffed when it was indexed."""
    write(tmp_path / "same.txt", "indexed before\n")
    write(tmp_path / "edited.txt", b"now \x00 binary")
    write(tmp_path / "new.txt", "never seen\n")
    same, edited = os.stat(tmp_path / "same.txt"), os.stat(tmp_path / "edited.txt")
    known = {
        str(tmp_path / "same.txt"): (same.st_size, same.st_mtime_ns),
        str(tmp_path / "edited.txt"): (same.st_size, edited.st_mtime_ns),  # its size changed
    }
    opened = []
    real_open = builtins.open

    def spying_open(file, *args, **kwargs):
        opened.append(Path(file).name)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(corpus, "open", spying_open, raising=False)
    monkeypatch.setattr(documents, "open", spying_open, raising=False)  # (its open_regular)
    found = list(crawl(tmp_path, known=known))
    opened.remove("mountinfo")  # which devices are /proc and /sys: read once a crawl
    assert sorted(opened) == ["edited.txt", "new.txt"]
    assert {item.path.name: type(item).__name__ for item in found} == {
        "edited.txt": "Skipped",
        "new.txt": "FileEntry",
        "same.txt": "FileEntry",
    }


def test_extensionless_file_of_undecodable_bytes_is_binary(tmp_path: Path) -> None:
    rng = random.Random(0)
    write(tmp_path / "noise", bytes(rng.randrange(1, 256) for _ in range(4000)))  # no NUL byte
    assert skipped(tmp_path) == {"noise": "binary file"}


def test_utf16_with_bom_is_text_despite_its_nul_bytes(tmp_path: Path) -> None:
    text = "Grüße aus Köln — 東京\nsecond line\n"
    write(tmp_path / "wide.txt", codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    write(tmp_path / "wide-be", codecs.BOM_UTF16_BE + text.encode("utf-16-be"))
    assert indexed(tmp_path) == ["wide-be", "wide.txt"]
    assert read_text(tmp_path / "wide.txt") == text
    assert read_text(tmp_path / "wide-be") == text


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_skipped_chmod(tmp_path: Path) -> None:
    path = write(tmp_path / "locked.txt", "secret\n")
    path.chmod(0)
    try:
        assert skipped(tmp_path) == {"locked.txt": "unreadable: permission denied"}
        with pytest.raises(UnreadableFile, match="permission denied"):
            read_text(path)
    finally:
        path.chmod(0o644)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (PermissionError(13, "Permission denied"), "unreadable: permission denied"),
        # deleted between the folder listing's stat and the open
        (FileNotFoundError(2, "No such file or directory"), "vanished during crawl"),
        (OSError(5, "Input/output error"), "unreadable: input/output error"),
    ],
)
def test_unreadable_file_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError, reason: str
) -> None:
    """Faults simulated at open(), so that they are tested when the suite runs as root too."""
    locked = write(tmp_path / "locked.txt", "secret\n")
    write(tmp_path / "open.txt", "fine\n")
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if Path(file) == locked:
            raise error
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    assert skipped(tmp_path) == {"locked.txt": reason}
    assert indexed(tmp_path) == ["open.txt"]
    for read in (read_text, content_hash):
        with pytest.raises(UnreadableFile) as caught:
            read(locked)
        assert caught.value.reason == reason
        assert caught.value.path == locked


def test_unreadable_folder_is_reported_and_the_rest_crawled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    write(locked / "a.txt", "a\n")
    write(tmp_path / "b.txt", "b\n")
    real_scandir = os.scandir

    def guarded_scandir(path):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(corpus.os, "scandir", guarded_scandir)
    assert skipped(tmp_path) == {"locked": "unreadable folder: permission denied"}
    assert indexed(tmp_path) == ["b.txt"]


def test_a_folder_whose_ignore_file_cannot_be_read_is_left_out_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an unreadable .gitignore leaves out is not known: its folder is skipped as one that
    cannot be listed (its indexed entries are kept), where the files it kept out were indexed
    without a word; the single-path API (the watcher's) leaves them out too."""
    write(tmp_path / "notes" / ".gitignore", "private/\n")
    write(tmp_path / "notes" / "private" / "diary.md", "secret\n")
    write(tmp_path / "notes" / "todo.md", "todo\n")
    write(tmp_path / "b.txt", "b\n")
    locked = tmp_path / "notes" / ".gitignore"
    real_read_bytes = Path.read_bytes

    def guarded_read_bytes(path: Path) -> bytes:
        if path == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", guarded_read_bytes)
    assert skipped(tmp_path) == {
        "notes": "unreadable folder: its .gitignore cannot be read (permission denied)"
    }
    assert indexed(tmp_path) == ["b.txt"]
    matcher = corpus.IgnoreMatcher(tmp_path)
    assert matcher.is_ignored(tmp_path / "notes" / "private" / "diary.md")
    assert matcher.is_ignored(tmp_path / "notes" / "todo.md")
    assert not matcher.is_ignored(tmp_path / "b.txt")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_an_ignore_file_that_is_a_pipe_is_passed_over_not_waited_on(tmp_path: Path) -> None:
    """Reading it would wait for a writer for ever (``nash index`` hung)."""
    import threading

    write(tmp_path / "a.txt", "a\n")
    os.mkfifo(tmp_path / ".gitignore")
    found: list = []
    walk = threading.Thread(target=lambda: found.extend(crawl(tmp_path)), daemon=True)
    walk.start()
    walk.join(30)
    assert not walk.is_alive() and [i.path.name for i in found] == ["a.txt"]


def test_an_ignore_file_that_cannot_be_looked_at_for_an_io_error_is_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only "not there" and "may not look" mean no rules; an I/O error does not."""
    write(tmp_path / "d" / ".gitignore", "private/\n")
    write(tmp_path / "d" / "private" / "x.txt", "x\n")
    real_lstat = os.lstat

    def lstat(path, *args, **kwargs):
        if Path(os.fsdecode(path)) == tmp_path / "d" / ".gitignore":
            raise OSError(5, "Input/output error", str(path))
        return real_lstat(path, *args, **kwargs)

    monkeypatch.setattr(corpus.os, "lstat", lstat)
    assert skipped(tmp_path) == {
        "d": "unreadable folder: its .gitignore cannot be read (input/output error)"
    }


def test_a_folder_that_may_be_listed_but_not_entered_skips_its_files_not_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder without its x bit: every look inside fails, for an ignore file that is not
    there too, which is no unreadable ignore file; its files are skipped one by one as before."""
    inside = write(tmp_path / "d" / "a.txt", "a\n").parent
    real_lstat, real_stat, real_open = os.lstat, os.stat, builtins.open

    def denied(path) -> bool:
        return not isinstance(path, int) and Path(os.fsdecode(path)).parent == inside

    def lstat(path, *args, **kwargs):
        if denied(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_lstat(path, *args, **kwargs)

    def stat_(path, *args, **kwargs):  # (pathlib's is_symlink, exists: os.stat)
        if denied(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    def guarded_open(file, *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and denied(file):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(corpus.os, "lstat", lstat)
    monkeypatch.setattr(corpus.os, "stat", stat_)
    monkeypatch.setattr(builtins, "open", guarded_open)
    assert skipped(tmp_path) == {"d/a.txt": "unreadable: permission denied"}


def test_dangling_symlink_and_symlink_loop_are_reported(tmp_path: Path) -> None:
    write(tmp_path / "real.md", "real\n")
    (tmp_path / "dangling.md").symlink_to(tmp_path / "deleted.md")
    (tmp_path / "loop-a").symlink_to(tmp_path / "loop-b")
    (tmp_path / "loop-b").symlink_to(tmp_path / "loop-a")
    (tmp_path / "self.txt").symlink_to(tmp_path / "self.txt")
    for follow in (False, True):
        assert skipped(tmp_path, follow_symlinks=follow) == {
            "dangling.md": "dangling symlink",
            "loop-a": "symlink loop",
            "loop-b": "symlink loop",
            "self.txt": "symlink loop",
        }
        assert indexed(tmp_path, follow_symlinks=follow) == ["real.md"]


def test_symlinks_are_not_followed_by_default(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside / "elsewhere.md", "elsewhere\n")
    root = tmp_path / "root"
    write(root / "own.md", "own\n")
    (root / "linked-folder").symlink_to(outside)
    (root / "linked.md").symlink_to(outside / "elsewhere.md")
    (root / "alias.md").symlink_to(root / "own.md")
    assert indexed(root) == ["own.md"]
    assert skipped(root) == {
        "alias.md": "symlink to a file, not followed",
        "linked-folder": "symlink to a folder, not followed",
        "linked.md": "symlink to a file, not followed",
    }
    # followed on request, each target once, nothing twice under two names
    assert indexed(root, follow_symlinks=True) == [
        "linked-folder/elsewhere.md",
        "own.md",
    ]
    assert skipped(root, follow_symlinks=True) == {
        "alias.md": "symlink to a file inside the crawled folder",
        "linked.md": "symlink to something crawled already",
    }


def test_symlink_to_an_ancestor_is_a_loop_when_followed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "sub" / "a.md", "a\n")
    (root / "sub" / "up").symlink_to(root)
    (root / "sub" / "way-up").symlink_to(tmp_path)  # outside root, but contains it
    assert indexed(root, follow_symlinks=True) == ["sub/a.md"]
    assert skipped(root, follow_symlinks=True) == {
        "sub/up": "symlink loop",
        "sub/way-up/root": "symlink loop",
    }


def test_files_vanishing_mid_crawl_are_skipped_quietly(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "a\n")
    write(tmp_path / "b.txt", "b\n")
    write(tmp_path / "c" / "d.txt", "d\n")
    write(tmp_path / "e.txt", "e\n")
    results = []
    for item in crawl(tmp_path):
        results.append(item)
        if item.path.name == "a.txt":  # the folder was listed already: delete behind its back
            (tmp_path / "b.txt").unlink()
            shutil.rmtree(tmp_path / "c")
    assert [(type(r).__name__, r.path.relative_to(tmp_path).as_posix()) for r in results] == [
        ("FileEntry", "a.txt"),
        ("Skipped", "b.txt"),
        ("Skipped", "c"),
        ("FileEntry", "e.txt"),
    ]
    assert {r.reason for r in results if isinstance(r, Skipped)} == {"vanished during crawl"}
    with pytest.raises(UnreadableFile, match="vanished during crawl"):
        read_text(tmp_path / "b.txt")
    with pytest.raises(UnreadableFile, match="vanished during crawl"):
        content_hash(tmp_path / "b.txt")


def test_fifo_is_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")  # opening it for reading would block forever
    assert skipped(tmp_path) == {"pipe.txt": "not a regular file"}


def test_check_file_does_not_follow_symlinks_and_says_which_paths_are_no_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A watcher learns of single paths: a link there is refused as the crawl refuses it, and
    paths that are no document now (links, pipes) are ``excluded``: their old entries go."""
    (tmp_path / "real.txt").write_text("words to index")
    (tmp_path / "link.txt").symlink_to(tmp_path / "real.txt")
    (tmp_path / "to-folder.txt").symlink_to(tmp_path)
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")
    (tmp_path / "loop.txt").symlink_to(tmp_path / "loop.txt")
    os.mkfifo(tmp_path / "pipe.txt")
    verdicts = {
        name: check_file(tmp_path / name)
        for name in ("link.txt", "to-folder.txt", "dangling.txt", "loop.txt", "pipe.txt")
    }
    assert {name: (v.reason, v.excluded) for name, v in verdicts.items()} == {
        "link.txt": ("symlink to a file, not followed", True),
        "to-folder.txt": ("symlink to a folder, not followed", True),
        "dangling.txt": ("dangling symlink", True),
        "loop.txt": ("symlink loop", True),
        "pipe.txt": ("not a regular file", True),
    }
    assert isinstance(check_file(tmp_path / "real.txt"), FileEntry)
    crawled = {r.path.name: r.excluded for r in crawl(tmp_path) if isinstance(r, Skipped)}
    assert crawled == {name: True for name in verdicts}
    # A link is no document whatever its target: one nash may not follow is no more one.
    real_stat = os.stat

    def denied(path, *args, **kwargs):
        if Path(path).name == "link.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", denied)
    unreadable = check_file(tmp_path / "link.txt")
    assert (unreadable.reason, unreadable.excluded) == ("unreadable: permission denied", True)


def test_large_file_skipped_by_size_limit_and_read_when_raised(tmp_path: Path) -> None:
    line = "the quick brown fox jumps over the lazy dog, again and again\n"
    size = 50_000_000
    path = tmp_path / "big.txt"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(line * (size // len(line) + 1))
    actual = path.stat().st_size
    assert actual > DEFAULT_MAX_BYTES
    tracemalloc.start()
    try:
        assert skipped(tmp_path) == {"big.txt": "larger than 10 MB (--max-size)"}
        assert skipped(tmp_path, max_bytes=parse_size("20MB")) == {
            "big.txt": "larger than 20 MB (--max-size)"
        }
        assert indexed(tmp_path, max_bytes=parse_size("64MiB")) == ["big.txt"]
        _, crawl_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        digest = content_hash(path)
        _, hash_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        text = read_text(path)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(text) == actual and text.startswith(line)
    assert digest == content_hash(path.read_bytes())
    # crawling sniffs 8 KiB and hashing streams 1 MiB chunks; reading holds bytes + text once
    assert crawl_peak < 1_000_000
    assert hash_peak < 3_000_000
    assert read_peak < 2.2 * actual


def test_sizes_parse_and_print() -> None:
    assert parse_size("10MB") == DEFAULT_MAX_BYTES == parse_size("10 mb") == parse_size("10000000")
    assert parse_size("512KiB") == 512 * 1024
    assert parse_size("2.5G") == 2_500_000_000
    assert format_size(DEFAULT_MAX_BYTES) == "10 MB"
    assert format_size(1536) == "1.536 KB" and format_size(1_048_577) == "1.048 MB"
    assert format_size(1024) == "1 KiB" and format_size(1_048_576) == "1 MiB"  # as given
    assert format_size(parse_size("512KiB")) == "512 KiB"
    assert format_size(1_024_000) == "1.024 MB" and format_size(2 * 1024**4) == "2 TiB"
    assert format_size(999_900) == "999.9 KB" and format_size(1999) == "1.999 KB"  # not 1e+03
    assert format_size(1000) == "1 KB" and format_size(5 * 1000**5) == "5000 TB"
    assert format_size(12) == "12 bytes" and format_size(1) == "1 byte"
    assert parse_size("10TB") == 10 * 1000**4 and parse_size("1TiB") == 1024**4
    assert format_size(parse_size("2TB")) == "2 TB"
    for bad in ("", "ten MB", "10 parsecs", "-1", "1" + "0" * 320, "9" * 400 + "TB"):
        with pytest.raises(NashError, match="not a size"):
            parse_size(bad)


@pytest.mark.skipif(sys.platform != "linux", reason="needs a file system that takes any bytes")
def test_a_file_name_that_is_not_utf8_is_skipped_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "fine.txt").write_text("rocket orbit")
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt"), "wb") as f:
        f.write(b"rocket moon")  # Latin-1 name: the index stores paths as UTF-8 text
    items = list(corpus.crawl(tmp_path))
    found = [i.path.name for i in items if isinstance(i, corpus.FileEntry)]
    skipped = [i.reason for i in items if isinstance(i, corpus.Skipped)]
    assert found == ["fine.txt"] and skipped == [
        "file name is not valid UTF-8 (rename the file to index it)"
    ]


@pytest.mark.skipif(sys.platform != "linux", reason="needs a file system that takes any bytes")
def test_a_folder_name_that_is_not_utf8_is_named_as_the_problem(tmp_path: Path) -> None:
    """Its files' names are fine: the folder is what to rename (each file was told to be)."""
    latin = os.path.join(os.fsencode(tmp_path), b"Donn\xe9es")
    os.mkdir(latin)
    with open(os.path.join(latin, b"notes.txt"), "wb") as f:
        f.write(b"rocket moon")
    (tmp_path / "fine.txt").write_text("rocket orbit")
    assert [i.reason for i in crawl(tmp_path) if isinstance(i, Skipped)] == [
        "folder name is not valid UTF-8 (rename the folder to index it)"
    ]
    with pytest.raises(NashError) as refused:  # as the folder to index: one line, bytes shown
        list(crawl(os.fsdecode(latin)))
    assert visible(str(refused.value)) == (  # (as an error line shows it)
        f"{tmp_path}/Donn\\xe9es: the path is not valid UTF-8 and the index stores paths as "
        "text; rename the folder whose name shows escaped bytes to index it"
    )


MOUNTINFO = (
    "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
    "23 27 0:22 / /sys rw,relatime shared:7 - sysfs sysfs rw\n"
    "25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683792k\n"
    "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
    "30 27 0:40 / /mnt/with\\040space rw master:1 shared:2 - cgroup2 cgroup2 rw\n"
    "garbage line\n"
)


def test_system_filesystems_are_read_from_mountinfo(tmp_path: Path) -> None:
    mountinfo = write(tmp_path / "mountinfo", MOUNTINFO)
    assert corpus.system_filesystems(str(mountinfo)) == {
        os.makedev(0, 21): "proc",
        os.makedev(0, 22): "sysfs",
        os.makedev(0, 40): "cgroup2",
    }
    assert corpus.system_filesystems(str(tmp_path / "missing")) == {}


class _OnAnotherDevice:
    """An ``os.DirEntry`` whose ``stat()`` gives ``device``: a folder mounted from elsewhere."""

    def __init__(self, entry: os.DirEntry, device: int) -> None:
        self._entry, self._device = entry, device
        self.name, self.path = entry.name, entry.path

    def is_symlink(self) -> bool:
        return self._entry.is_symlink()

    def is_dir(self, follow_symlinks: bool = True) -> bool:
        return self._entry.is_dir(follow_symlinks=follow_symlinks)

    def stat(self, follow_symlinks: bool = True) -> os.stat_result:
        st = list(self._entry.stat(follow_symlinks=follow_symlinks))
        st[stat.ST_DEV] = self._device
        return os.stat_result(st)


def test_folders_on_a_system_filesystem_are_skipped_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crawl of / meets /proc, /sys and /dev, whose files describe the running system (some
    block when read, /proc/kmsg): each is one skip, nothing under it is listed. Simulated: the
    folder "proc" answers with a device that mountinfo calls a proc mount."""
    write(tmp_path / "a.txt", "a document\n")
    write(tmp_path / "proc" / "kmsg", "never read\n")
    write(tmp_path / "home" / "b.txt", "another\n")
    proc_device = os.makedev(0, 21)
    real_scandir = corpus.os.scandir
    listed: list[str] = []

    class Listing:
        def __init__(self, path) -> None:
            listed.append(Path(path).name)
            self._scan = real_scandir(path)

        def __enter__(self):
            return [_OnAnotherDevice(e, proc_device) if e.name == "proc" else e for e in self._scan]

        def __exit__(self, *exc) -> None:
            self._scan.close()

        def close(self) -> None:
            self._scan.close()

    monkeypatch.setattr(corpus.os, "scandir", Listing)
    monkeypatch.setattr(corpus, "system_filesystems", lambda: {proc_device: "proc"})
    assert indexed(tmp_path) == ["a.txt", "home/b.txt"]
    assert skipped(tmp_path) == {"proc": "system folder (proc filesystem)"}
    assert "proc" not in listed


@pytest.mark.skipif(
    corpus.system_filesystems().get(os.stat("/proc").st_dev if os.path.isdir("/proc") else -1)
    != "proc",
    reason="no proc filesystem at /proc (not Linux)",
)
def test_links_into_proc_are_not_followed_and_proc_is_no_root(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "a document\n")
    (tmp_path / "kernel").symlink_to("/proc/sys/kernel")
    (tmp_path / "cpu.txt").symlink_to("/proc/cpuinfo")
    assert indexed(tmp_path, follow_symlinks=True) == ["a.txt"]
    assert skipped(tmp_path, follow_symlinks=True) == {
        "cpu.txt": "symlink into a system folder (proc filesystem)",
        "kernel": "symlink into a system folder (proc filesystem)",
    }
    for root in ("/proc", "/proc/sys/kernel", "/proc/cpuinfo"):
        with pytest.raises(NashError, match=r"in a system folder \(proc filesystem\), which"):
            list(crawl(root))
