"""recipes/robustness/run.py: the fast hostile-input cases give no traceback, hang, silently wrong
output or lost data (the whole list: ``python recipes/robustness/run.py``, a few minutes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "recipes" / "robustness" / "run.py"


def test_fast_robustness_cases(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    listed = subprocess.run([sys.executable, str(RUN), "--fast", "--list"], capture_output=True, text=True,
                            env=env, timeout=60, check=True).stdout.splitlines()
    table = tmp_path / "robustness.json"
    res = subprocess.run([sys.executable, str(RUN), "--fast", "--jobs", "2", "--out", str(table)],
                         capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path, check=False)
    result = json.loads(table.read_text())
    counts = result["summary"]
    assert counts["inputs tried"] == len(listed) >= 10, res.stdout
    bad = {k: counts[k] for k in ("tracebacks", "data lost", "hangs", "silently wrong")}
    assert bad == {"tracebacks": 0, "data lost": 0, "hangs": 0, "silently wrong": 0}, res.stdout
    assert res.returncode == 0, res.stdout + res.stderr
    by_name = {c["name"]: c["outcome"] for c in result["cases"]}
    assert by_name["out-dot-in-checkout"] == "clear error"
    assert by_name["truncated-jpeg-skip-bad"] == "handled" and by_name["stale-staging-killed-build"] == "handled"
    assert "| inputs tried | handled | clear errors | silently wrong | tracebacks | hangs | data lost |" in res.stdout
