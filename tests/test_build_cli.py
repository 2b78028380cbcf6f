"""The build and the ``ai4va-fg`` CLI end to end: embedded demo data, the synthetic AI4VA-schema
set, bad-input policy (strict exit 2 / --skip-bad), atomic output, push-to-hub (HfApi mocked) and
the lazy ``report`` subcommand."""

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import ai4va_fg_dataset
from ai4va_fg_dataset.cli import main

DEMO = Path(ai4va_fg_dataset.__file__).parent / "demo_data"
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    for k, v in OFFLINE.items():
        monkeypatch.setenv(k, v)


def _corrupt_demo(tmp_path: Path) -> Path:
    """A copy of the demo data whose OpenMantra JSON has one inverted frame box."""
    root = tmp_path / "bad_demo"
    shutil.copytree(DEMO, root)
    ann = root / "open-mantra" / "annotation.json"
    data = json.loads(ann.read_text())
    data[0]["pages"][0]["frame"][1]["w"] = -40
    ann.write_text(json.dumps(data))
    return root


def test_strict_mode_exit_2_names_file_and_record(tmp_path):
    bad = _corrupt_demo(tmp_path)
    out = tmp_path / "out"
    res = subprocess.run(
        [str(Path(sys.executable).parent / "ai4va-fg"), "build", "--source", "auto", "--path", str(bad),
         "--out", str(out)],
        check=False, capture_output=True, text=True, timeout=300, env={**os.environ, **OFFLINE},
    )
    assert res.returncode == 2, res.stderr
    assert f"{bad / 'open-mantra' / 'annotation.json'}: tojime_no_siora page 15 frame 1" in res.stderr
    assert "inverted" in res.stderr and "--skip-bad" in res.stderr
    assert "Traceback" not in res.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad_demo"]  # no staging folder left


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main(["build", "--source", "acbf", "--path", str(tmp_path / "missing.acbf"), "--out",
                 str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["build", "--source", "acbf", "--source", "auto", "--path", str(DEMO), "--out",
                 str(tmp_path / "o")]) == 2
    assert "2 --source but 1 --path" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["build", "--source", "auto", "--path", str(DEMO), "--out", str(tmp_path / "o"),
              "--tasks", "panel_reordering,nonsense"])
    assert exc.value.code == 2
    assert "unknown task(s) ['nonsense']" in capsys.readouterr().err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert main(["build", "--source", "auto", "--path", str(DEMO), "--out", str(foreign)]) == 2
    assert "not a previous AI4VA-FG build" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_push_to_hub_with_mocked_api(tmp_path, monkeypatch, capsys):
    import huggingface_hub

    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, **kw):
            calls.append(("create_repo", repo_id, kw))
            return types.SimpleNamespace(url=f"https://huggingface.co/datasets/{repo_id}")

        def upload_folder(self, **kw):
            calls.append(("upload_folder", kw))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    folder = tmp_path / "built"
    folder.mkdir()
    assert main(["push-to-hub", str(folder), "--repo-id", "me/ai4va-fg"]) == 2
    assert "missing README.md, build_report.json" in capsys.readouterr().err
    (folder / "README.md").write_text("---\npretty_name: AI4VA-FG\n---\n")
    (folder / "build_report.json").write_text("{}")
    assert main(["push-to-hub", str(folder), "--repo-id", "bad-id"]) == 2
    assert main(["push-to-hub", str(folder), "--repo-id", "me/ai4va-fg", "--private", "--token", "t0k"]) == 0
    assert calls[-3] == ("init", "t0k")
    assert calls[-2] == ("create_repo", "me/ai4va-fg", {"repo_type": "dataset", "private": True, "exist_ok": True})
    upload = calls[-1][1]
    assert upload["folder_path"] == str(folder) and upload["repo_id"] == "me/ai4va-fg"
    assert upload["repo_type"] == "dataset"
    assert "https://huggingface.co/datasets/me/ai4va-fg" in capsys.readouterr().out


LAZY_CHECK = (
    "import sys, ai4va_fg_dataset.cli, ai4va_fg_dataset.build; "
    "print(any(m.startswith(('lmms_eval', 'trl')) for m in sys.modules))"
)


def test_report_subcommand_is_lazy(monkeypatch):
    res = subprocess.run(
        [sys.executable, "-c", LAZY_CHECK],
        check=True, capture_output=True, text=True, timeout=120,
    )
    assert res.stdout.strip() == "False"
    seen = []
    fake = types.ModuleType("lmms_eval_tasks.report")
    fake.main = lambda argv: seen.append(argv) or 3
    monkeypatch.setitem(sys.modules, "lmms_eval_tasks.report", fake)
    assert main(["report", "--results", "x.json"]) == 3
    assert seen == [["--results", "x.json"]]
