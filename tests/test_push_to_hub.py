"""``ai4va-fg push-to-hub`` against a fake Hugging Face Hub on 127.0.0.1 (no network needed).

:class:`FakeHub` answers the endpoints ``huggingface_hub`` 1.x calls for a push (``whoami-v2``,
``repos/create``, repo info, ``tree``, ``validate-yaml``, ``preupload``, ``commit``) with the status
codes and ``X-Error-*`` headers the Hub uses, so ``huggingface_hub`` raises its own typed errors.
Every failure must be ONE line on stderr with what to do, exit 1 (Hub side) or 2 (bad folder / repo
id), and no commit; a successful push is one commit with every file of the build, byte for byte.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
from local_http import LocalServer, read_body, send_json

from ai4va_fg_dataset.build.dataset_card import CardInfo
from ai4va_fg_dataset.build.export import write_dataset
from ai4va_fg_dataset.cli import main
from ai4va_fg_dataset.schema import Sample

CLI = str(Path(sys.executable).parent / "ai4va-fg")

WRITE_USER = {"type": "user", "name": "me", "orgs": [{"name": "myorg", "roleInOrg": "write"}],
              "auth": {"type": "access_token", "accessToken": {"displayName": "w", "role": "write"}}}
READ_USER = {**WRITE_USER, "auth": {"type": "access_token", "accessToken": {"displayName": "r", "role": "read"}}}


class FakeHub(LocalServer):
    """A tiny in-memory Hub: users by token, public dataset repos, commits applied atomically."""

    def __init__(self):
        self.tokens = {"good": WRITE_USER, "readonly": READ_USER}
        self.repos: dict[str, dict[str, bytes]] = {"someone/theirs": {".gitattributes": b"*.parquet filter=lfs\n"}}
        self.commits: list[dict] = []
        self.requests: list[tuple[str, str]] = []
        super().__init__(methods=("GET", "POST"), start=False, poll_interval=0.02)

    # --- request handling -------------------------------------------------------------------------

    def _user(self, req):
        auth = req.headers.get("Authorization", "")
        return self.tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None

    def _can_write(self, user, repo_id):
        names = {user["name"], *(o["name"] for o in user["orgs"] if o["roleInOrg"] in ("write", "admin"))}
        return user["auth"]["accessToken"]["role"] != "read" and repo_id.split("/")[0] in names

    def handle(self, req):
        method, path = req.command, urlparse(req.path).path
        self.requests.append((method, path))
        body = read_body(req)
        user = self._user(req)
        if path == "/api/whoami-v2":
            if user is None:
                msg = "Invalid credentials in Authorization header"
                return send_json(req, 401, {"error": msg}, {"X-Error-Message": msg})
            return send_json(req, 200, user)
        if user is None:
            return send_json(req, 401, {"error": "Unauthorized"}, {"X-Error-Message": "Unauthorized"})
        if path == "/api/repos/create" and method == "POST":
            payload = json.loads(body)
            repo_id = f"{payload.get('organization') or user['name']}/{payload['name']}"
            if not self._can_write(user, repo_id):
                msg = f'You don\'t have the rights to create a dataset under the namespace "{repo_id.split("/")[0]}"'
                return send_json(req, 403, {"error": msg}, {"X-Error-Message": msg})
            if repo_id in self.repos:
                return send_json(req, 409, {"error": "You already created this dataset repo",
                                            "url": f"{self.url}/datasets/{repo_id}"})
            self.repos[repo_id] = {".gitattributes": b"*.parquet filter=lfs\n"}
            return send_json(req, 200, {"url": f"{self.url}/datasets/{repo_id}", "name": repo_id})
        if path == "/api/validate-yaml":
            return send_json(req, 200, {"errors": [], "warnings": []})
        parts = path.split("/")  # ['', 'api', 'datasets', owner, name, (action, revision, ...)]
        if len(parts) < 5 or parts[:3] != ["", "api", "datasets"]:
            return send_json(req, 404, {"error": "Not Found"})
        repo_id, action = f"{parts[3]}/{parts[4]}", parts[5] if len(parts) > 5 else None
        if repo_id not in self.repos:
            msg = "Repository not found"
            return send_json(req, 404, {"error": msg}, {"X-Error-Code": "RepoNotFound", "X-Error-Message": msg})
        files = self.repos[repo_id]
        if action is None:
            return send_json(req, 200, {"id": repo_id, "sha": "0" * 40, "private": False,
                                        "siblings": [{"rfilename": f} for f in files]})
        if action == "tree":
            return send_json(req, 200, [{"type": "file", "path": p, "size": len(b), "oid": "1" * 40}
                                        for p, b in sorted(files.items())])
        if action in ("preupload", "commit") and not self._can_write(user, repo_id):
            msg = "You don't have the rights to write to this repo"
            return send_json(req, 403, {"error": msg}, {"X-Error-Message": msg})
        if action == "preupload":
            paths = [f["path"] for f in json.loads(body)["files"]]
            return send_json(req, 200, {"files": [{"path": p, "uploadMode": "regular", "shouldIgnore": False}
                                                  for p in paths]})
        if action == "commit":
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            added = {v["value"]["path"]: base64.b64decode(v["value"]["content"]) for v in lines if v["key"] == "file"}
            deleted = [v["value"]["path"] for v in lines if v["key"] == "deletedFile"]
            header = next(v["value"] for v in lines if v["key"] == "header")
            self.commits.append({"repo": repo_id, "added": added, "deleted": deleted, "header": header})
            for p in deleted:
                files.pop(p, None)
            files.update(added)
            return send_json(req, 200, {"commitUrl": f"{self.url}/datasets/{repo_id}/commit/{'2' * 40}",
                                        "commitOid": "2" * 40, "pullRequestUrl": None})
        return send_json(req, 404, {"error": "Not Found"})


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory) -> Path:
    """A tiny finished build: two tasks, a few rows, card + build_report.json."""
    from PIL import Image

    out = tmp_path_factory.mktemp("push") / "ai4va_fg"
    pages = [f"acbf/b/{i}" for i in range(4)]
    splits = dict(zip(pages, ["train", "train", "validation", "test"]))
    samples = [
        Sample(id=f"{task}/{p}/0", task=task, image=Image.new("RGB", (16, 12), (i * 40, 0, 0)), question="Q?",
               choices=["a", "b"], answer="A", answer_type="choice", page_id=p, source="acbf", width=16, height=12)
        for i, p in enumerate(pages) for task in ("depth_comparison", "panel_reordering")
    ]
    write_dataset(samples, out, splits=splits, card=CardInfo(seed=0))
    (out / "build_report.json").write_text("{}")
    (out / ".cache").mkdir()
    (out / ".cache" / "lock").write_text("not uploaded")
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and ".cache" not in p.parts}


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """The fake Hub as ``huggingface_hub``'s endpoint, online, no token in the environment."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # no cached login
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf_home" / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "hf_home" / "stored_tokens"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with FakeHub() as fake:
        monkeypatch.setattr(constants, "ENDPOINT", fake.url)
        yield fake


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_successful_push_is_one_commit_of_every_file(hub, build_dir, capsys):
    hub.repos["me/ai4va-fg"] = {".gitattributes": b"x", "old_task/train-00000-of-00001.parquet": b"stale",
                                "LICENSE": b"kept"}
    assert main(["push-to-hub", str(build_dir), "--repo-id", "me/ai4va-fg", "--token", "good"]) == 0
    assert f"{hub.url}/datasets/me/ai4va-fg" in capsys.readouterr().out
    assert len(hub.commits) == 1
    commit = hub.commits[0]
    assert commit["added"] == _files(build_dir)  # every file, byte for byte; hidden folders left out
    assert set(commit["added"]) >= {"README.md", "build_report.json", "depth_comparison/test-00000-of-00001.parquet"}
    assert commit["deleted"] == ["old_task/train-00000-of-00001.parquet"]  # stale shard removed in the same commit
    assert hub.repos["me/ai4va-fg"]["LICENSE"] == b"kept"
    # a new repo in one of the user's organizations is created, then filled by one commit
    assert main(["push-to-hub", str(build_dir), "--repo-id", "myorg/ai4va-fg", "--token", "good"]) == 0
    assert len(hub.commits) == 2 and set(hub.repos["myorg/ai4va-fg"]) == {".gitattributes", *_files(build_dir)}


@pytest.mark.parametrize(
    ("token", "repo_id", "expected"),
    [
        (None, "me/ai4va-fg", "no Hugging Face token found: run `hf auth login`"),
        ("expired", "me/ai4va-fg", "the Hub rejected the token (401 Unauthorized)"),
        ("readonly", "me/ai4va-fg", "the token of user 'me' is read-only: create a write token"),
        ("good", "someone/theirs", ("no write access to dataset repo someone/theirs as user 'me' (your user and "
                                    "organizations: me, myorg) (403 Forbidden)")),
        ("good", "nobody/new", "no write access to dataset repo nobody/new as user 'me'"),
    ],
)
def test_hub_refusals_are_one_line_exit_1_and_commit_nothing(hub, build_dir, capsys, token, repo_id, expected):
    before = {k: dict(v) for k, v in hub.repos.items()}
    argv = ["push-to-hub", str(build_dir), "--repo-id", repo_id] + (["--token", token] if token else [])
    assert main(argv) == 1
    err = _one_line_error(capsys)
    assert err.startswith("ai4va-fg: push-to-hub failed: ") and expected in err, err
    if token is None or token == "expired":
        assert "HF_TOKEN" in err and "--token" in err
    assert hub.commits == [] and hub.repos == before
    assert not any("/commit/" in path for _, path in hub.requests)
    if token != "good":  # nothing but whoami before the token is known to be usable
        # (/api/agent-harnesses: huggingface_hub's best-effort user-agent registry, never a write)
        assert {path for _, path in hub.requests} <= {"/api/whoami-v2", "/api/agent-harnesses"}


def test_bad_folder_or_repo_id_exit_2_before_any_request(hub, build_dir, tmp_path, capsys):
    cases = [
        (tmp_path / "missing", "me/x", "does not exist; give the --out folder of `ai4va-fg build`"),
        (tmp_path, "me/x", "is not a built AI4VA-FG dataset: missing README.md, build_report.json"),
        (build_dir, "ai4va-fg", "repo id 'ai4va-fg' must look like 'owner/name'"),
        (build_dir, "me/ai4va--fg", "is not a valid Hub id"),
    ]
    for folder, repo_id, expected in cases:
        assert main(["push-to-hub", str(folder), "--repo-id", repo_id, "--token", "good"]) == 2
        err = _one_line_error(capsys)
        assert err.startswith("ai4va-fg: error: ") and expected in err, err
    # an unfinished build: the card lists a shard that is not there
    broken = tmp_path / "broken"
    import shutil

    shutil.copytree(build_dir, broken)
    next(broken.glob("depth_comparison/train-*.parquet")).unlink()
    assert main(["push-to-hub", str(broken), "--repo-id", "me/x", "--token", "good"]) == 2
    assert "is incomplete: its card lists 1 missing data file(s)" in _one_line_error(capsys)
    assert hub.requests == []


def _online_env(tmp_path):
    """This process's environment without the variables that put huggingface_hub offline (``HF_*``, and
    ``TRANSFORMERS_OFFLINE``, which ``make test`` sets and huggingface_hub also honours), with a fresh HF_HOME."""
    return {k: v for k, v in os.environ.items() if not k.startswith("HF_") and k != "TRANSFORMERS_OFFLINE"} | {
        "HF_HOME": str(tmp_path / "h")}


def test_offline_and_unreachable_hub_in_a_fresh_process(build_dir, tmp_path):
    """The real environment variables, read at import by huggingface_hub: HF_HUB_OFFLINE=1 and a
    HF_ENDPOINT where nothing listens (no network)."""
    import socket

    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    base = _online_env(tmp_path)
    argv = [CLI, "push-to-hub", str(build_dir), "--repo-id", "me/ai4va-fg"]
    offline = subprocess.run(argv, check=False, env=base | {"HF_HUB_OFFLINE": "1", "HF_TOKEN": "good"},
                             capture_output=True, text=True, timeout=60)
    unreachable = subprocess.run(argv + ["--token", "good"], check=False, env=base | {"HF_ENDPOINT": dead},
                                 capture_output=True, text=True, timeout=60)
    assert (offline.returncode, offline.stderr) == (1, ("ai4va-fg: push-to-hub failed: offline mode is on "
                                                       "(HF_HUB_OFFLINE=1): unset HF_HUB_OFFLINE and retry with "
                                                       "network access\n"))
    assert unreachable.returncode == 1, unreachable.stderr
    assert unreachable.stderr.startswith(f"ai4va-fg: push-to-hub failed: cannot reach the Hugging Face Hub at {dead} "
                                         "(ConnectError")
    assert unreachable.stderr.count("\n") == 1 and "check the network (or HF_ENDPOINT)" in unreachable.stderr


def test_push_through_hf_endpoint_in_a_fresh_process(build_dir, tmp_path):
    """End to end with the environment a user has: HF_ENDPOINT + HF_TOKEN, the installed script."""
    env = _online_env(tmp_path)
    with FakeHub() as hub:
        res = subprocess.run([CLI, "push-to-hub", str(build_dir), "--repo-id", "me/ai4va-fg"],
                             check=False, env=env | {"HF_ENDPOINT": hub.url, "HF_TOKEN": "good"},
                             capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith(f"{hub.url}/datasets/me/ai4va-fg")
    assert [c["added"] for c in hub.commits] == [_files(build_dir)]
