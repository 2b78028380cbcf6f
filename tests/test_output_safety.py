"""``ai4va-fg build --out``: nothing lost. A previous build is recognised only by the manifest the
builder writes (never by README text); --out may not be or contain an input, the working directory
or a git work tree; a rebuild removes only what the builder wrote; an unwritable --out is refused
before any work; staging folders of killed builds are removed, those of running builds kept."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from shared_data import tiny_panel_coco

from ai4va_fg_dataset.build.export import MANIFEST, STAGING_MARKER, read_manifest
from ai4va_fg_dataset.cli import main
from ai4va_fg_dataset.core import atomic_dir

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    for k, v in OFFLINE.items():
        monkeypatch.setenv(k, v)


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _build(data: Path, out, *extra: str) -> int:
    return main(["build", "--source", "coco", "--path", str(data), "--out", str(out), "--no-contact-sheet",
                 "--tasks", "panel_reordering", *extra])


def test_out_dot_in_a_checkout_is_refused_and_nothing_deleted(tmp_path, monkeypatch, capsys):
    """The issue's case: `ai4va-fg build ... --out .` inside a checkout deleted it, .git included."""
    repo = tmp_path / "checkout"
    (repo / ".git").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / "README.md").write_text("# AI4VA-FG\n\nBuild the AI4VA-FG benchmark.\n")
    tiny_panel_coco(repo / "data")
    before = _tree(repo)
    monkeypatch.chdir(repo)
    assert main(["build", "--source", "auto", "--path", "data", "--out", "."]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ai4va-fg: error: --out ") and "Traceback" not in err
    assert _tree(repo) == before and sorted(p.name for p in tmp_path.iterdir()) == ["checkout"]
    # the same checkout given as --out with the data elsewhere: still a git work tree, refused
    monkeypatch.chdir(tmp_path)
    assert _build(tiny_panel_coco(tmp_path / "elsewhere"), repo) == 2
    assert "is a git work tree (it holds .git)" in capsys.readouterr().err
    assert _tree(repo) == before


@pytest.mark.parametrize("marker", ["README.md", "build_report.json"])
def test_folder_is_not_a_build_because_of_its_readme_or_report(tmp_path, monkeypatch, capsys, marker):
    """Text or files that merely look like a build's are not the builder's manifest."""
    monkeypatch.chdir(tmp_path)
    data = tiny_panel_coco(tmp_path / "data")
    out = tmp_path / "notes"
    out.mkdir()
    (out / marker).write_text("Notes on AI4VA-FG: {}")
    (out / "thesis.tex").write_text("precious")
    before = _tree(out)
    assert _build(data, out) == 2
    err = capsys.readouterr().err
    assert f"output folder {out} exists, is not empty and is not a previous AI4VA-FG build" in err
    assert f"no {MANIFEST} manifest" in err
    assert _tree(out) == before


def test_out_equal_to_or_containing_an_input_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    project = tmp_path / "project"
    data = tiny_panel_coco(project / "data")
    (project / "README.md").write_text("AI4VA-FG experiments")
    before = _tree(project)
    (tmp_path / "link").symlink_to(project / "data", target_is_directory=True)
    for out, path, says in [(project / "data", project / "data", "is the input"),
                            (project, data, "contains the input"),
                            (tmp_path / "link", project / "data", "is the input"),
                            (tmp_path / "maps", data, "contains the input")]:
        argv = ["build", "--source", "auto", "--path", str(path), "--out", str(out)]  # auto: a folder
        if out.name == "maps":  # --coco-mapping is an input too
            (out).mkdir()
            (out / "m.json").write_text('{"panel": ["panel"]}')
            argv = ["build", "--source", "coco", "--path", str(data), "--out", str(out),
                    "--coco-mapping", str(out / "m.json")]
        assert main(argv) == 2, out
        err = capsys.readouterr().err
        assert says in err and "choose another --out" in err, err
    assert _tree(project) == before and (tmp_path / "maps" / "m.json").is_file()
    # the working directory itself, or one of its parents
    (tmp_path / "home" / "work").mkdir(parents=True)
    (tmp_path / "home" / "work" / "todo.txt").write_text("keep")
    monkeypatch.chdir(tmp_path / "home" / "work")
    for out in (".", ".."):
        assert _build(data, out) == 2
        assert "the working directory" in capsys.readouterr().err
    assert (tmp_path / "home" / "work" / "todo.txt").read_text() == "keep"


def test_rebuild_removes_only_what_the_builder_wrote(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = tiny_panel_coco(tmp_path / "data")
    out = tmp_path / "out"
    assert _build(data, out) == 0
    manifest = read_manifest(out)
    assert manifest["format"] == "ai4va-fg-build" and manifest["version"] == 1
    assert set(manifest["files"]) == set(_tree(out)) - {MANIFEST}  # every file it wrote, and only those
    assert all(len(v["sha256"]) == 64 and v["bytes"] > 0 for v in manifest["files"].values())
    (out / "my_notes.txt").write_text("precious")
    assert _build(data, out) == 2
    err = capsys.readouterr().err
    assert "holds files the build did not write (my_notes.txt)" in err
    assert (out / "my_notes.txt").read_text() == "precious"
    (out / "my_notes.txt").unlink()
    (out / "panel_reordering" / "scratch").mkdir()  # an empty folder is not the builder's either
    assert _build(data, out) == 2 and "panel_reordering/scratch" in capsys.readouterr().err
    (out / "panel_reordering" / "scratch").rmdir()
    assert _build(data, out, "--seed", "1") == 0  # a clean previous build is replaced
    assert read_manifest(out)["fingerprint"] and sorted(p.name for p in tmp_path.iterdir()) == ["data", "out"]


def test_unwritable_out_is_refused_before_any_input_is_read(tmp_path, monkeypatch, capsys):
    """A read-only --out location failed only after the whole generation, with a traceback."""
    import ai4va_fg_dataset.build.pipeline as build_module

    monkeypatch.chdir(tmp_path)
    data = tiny_panel_coco(tmp_path / "data")
    target = tmp_path / "readonly" / "out"
    real_mkdtemp = atomic_dir.tempfile.mkdtemp

    def mkdtemp(*args, dir=None, **kwargs):  # what a read-only file system answers, even to root
        if dir is not None and Path(dir) == target.parent:
            raise OSError(errno.EROFS, "Read-only file system", str(dir))
        return real_mkdtemp(*args, dir=dir, **kwargs)

    def no_loading(*args, **kwargs):
        raise AssertionError("inputs were read before the output location was checked")

    monkeypatch.setattr(atomic_dir.tempfile, "mkdtemp", mkdtemp)
    monkeypatch.setattr(build_module, "load_pages", no_loading)
    assert _build(data, target) == 2
    err = capsys.readouterr().err
    assert err.startswith("ai4va-fg: error: ") and "Traceback" not in err
    assert f"cannot create the build's temporary folder beside --out {target}" in err
    assert "Read-only file system" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to a chmod 0555 folder")
def test_out_without_write_permission_is_refused(tmp_path, monkeypatch, capsys):  # pragma: no cover - non-root
    monkeypatch.chdir(tmp_path)
    data = tiny_panel_coco(tmp_path / "data")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert _build(data, ro / "out") == 2
        assert "Permission denied" in capsys.readouterr().err
    finally:
        ro.chmod(0o755)


KILLED_BUILD = """
import os, signal, sys
import ai4va_fg_dataset.build.pipeline as b
real = b.write_dataset_card  # the Parquet shards are streamed before it
def write_then_die(*args, **kwargs):
    real(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)  # like an OOM kill or kill -9 in the middle of the build
b.write_dataset_card = write_then_die
from ai4va_fg_dataset.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_staging_folder_of_a_killed_build_is_removed_by_the_next_build(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = tiny_panel_coco(tmp_path / "data")
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-c", KILLED_BUILD, "build", "--source", "coco", "--path", str(data),
                          "--out", str(out), "--no-contact-sheet", "--tasks", "panel_reordering"],
                         env={**os.environ, **OFFLINE}, cwd=tmp_path, capture_output=True, timeout=300, check=False)
    assert res.returncode == -9, res.stderr
    leftovers = sorted(tmp_path.glob(".out.tmp-*"))
    assert len(leftovers) == 1 and list(leftovers[0].rglob("*.parquet"))  # what the issue saw: 100+ MB of these
    look_alike = tmp_path / ".out.tmp-someone-elses"  # same name pattern, no marker: not provably ours
    look_alike.mkdir()
    (look_alike / "keep.txt").write_text("keep")
    assert _build(data, out) == 0
    assert not leftovers[0].exists()
    assert (look_alike / "keep.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.tmp-someone-elses", "data", "out"]


def test_staging_folder_of_a_running_build_is_kept(tmp_path):
    """The lock on the marker is what tells a running build's folder from a dead one's."""
    out = tmp_path / "out"
    with atomic_dir.replacing_dir(out, marker=STAGING_MARKER) as running:
        (running / "shard.parquet").write_text("being written")
        assert json.loads((running / STAGING_MARKER).read_text())["pid"] == os.getpid()
        removed, kept = atomic_dir.remove_stale_dirs(out, STAGING_MARKER)
        assert (removed, kept) == ([], [running]) and (running / "shard.parquet").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in out.iterdir()) == ["shard.parquet"]  # the marker does not stay in the result
