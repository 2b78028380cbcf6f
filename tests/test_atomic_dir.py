"""ai4va_fg_dataset.core.atomic_dir.replacing_dir: a folder is replaced whole or not at all, no temp folder left."""

import os
import stat

import pytest

from ai4va_fg_dataset.core import atomic_dir
from ai4va_fg_dataset.core.atomic_dir import replacing_dir


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_text() for p in folder.rglob("*") if p.is_file()}


def test_new_folder_replaces_old_one_whole(tmp_path):
    out = tmp_path / "sub" / "out"
    with replacing_dir(out) as tmp:  # parent created, nothing there yet
        assert tmp.parent == out.parent and not out.exists()
        (tmp / "a.txt").write_text("1")
    assert _tree(out) == {"a.txt": "1"} and stat.S_IMODE(out.stat().st_mode) == 0o755
    with replacing_dir(out, mode=0o750) as tmp:
        (tmp / "b.txt").write_text("2")
        assert _tree(out) == {"a.txt": "1"}  # readers see the old folder until the block ends
    assert _tree(out) == {"b.txt": "2"} and stat.S_IMODE(out.stat().st_mode) == 0o750
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]  # no temp or old folder left


def test_error_in_block_leaves_old_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("old")
    with pytest.raises(RuntimeError, match="boom"), replacing_dir(out) as tmp:
        (tmp / "a.txt").write_text("new")
        raise RuntimeError("boom")
    assert _tree(out) == {"a.txt": "old"} and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_failed_move_puts_old_folder_back(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("old")
    real_replace = os.replace

    def replace(src, dst):
        if str(src).startswith(str(tmp_path / ".out.tmp-")):
            raise OSError("disk gone")
        real_replace(src, dst)

    monkeypatch.setattr(atomic_dir.os, "replace", replace)
    with pytest.raises(OSError, match="disk gone"), replacing_dir(out) as tmp:
        (tmp / "a.txt").write_text("new")
    assert _tree(out) == {"a.txt": "old"} and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_replacing_file_is_all_or_nothing(tmp_path):
    from ai4va_fg_dataset.core.atomic_dir import replacing_file

    out = tmp_path / "sub" / "figures.json"
    with replacing_file(out) as tmp:  # parent created
        assert tmp.parent == out.parent and not out.exists()
        tmp.write_text("1")
    assert out.read_text() == "1" and stat.S_IMODE(out.stat().st_mode) == 0o644
    with pytest.raises(RuntimeError, match="half-written"), replacing_file(out) as tmp:
        tmp.write_text("2, then a crash")
        raise RuntimeError("half-written")
    assert out.read_text() == "1"  # the old file is untouched
    assert sorted(p.name for p in out.parent.iterdir()) == ["figures.json"]  # no temp file left


def test_failed_block_removes_the_parent_folders_it_created(tmp_path):
    out = tmp_path / "a" / "b" / "out"
    with pytest.raises(RuntimeError, match="boom"), replacing_dir(out):
        assert (tmp_path / "a" / "b").is_dir()
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []  # a/ and a/b/ were made for out: gone again


def test_stale_dirs_are_removed_only_with_a_free_marker(tmp_path):
    """A leftover with an unlocked marker (its writer died) is removed; one without a marker, or
    whose marker is locked by a live writer, is kept."""
    from ai4va_fg_dataset.core.atomic_dir import remove_stale_dirs

    out = tmp_path / "out"
    dead = tmp_path / ".out.tmp-dead"
    dead.mkdir()
    (dead / "M").write_text("{}")  # the marker, its lock released with the (dead) process
    (dead / "shard").write_bytes(b"x" * 1000)
    foreign = tmp_path / ".out.tmp-foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("keep")
    other_out = tmp_path / ".other.tmp-x"  # another --out's leftover: not looked at
    other_out.mkdir()
    (other_out / "M").write_text("{}")
    with replacing_dir(out, marker="M") as live:
        removed, kept = remove_stale_dirs(out, "M")
        assert removed == [dead] and sorted(kept) == sorted([foreign, live])
        assert live.is_dir() and (foreign / "keep.txt").is_file() and other_out.is_dir()
    assert not dead.exists()
