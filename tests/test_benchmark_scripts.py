"""The build benchmarks of issue 13 run as written (tiny sizes): README figures come from them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
                          check=False)


def test_scaling_benchmark_runs(tmp_path):
    out = tmp_path / "scaling.json"
    done = _run(["recipes/benchmarks/scaling.py", "--pages", "3,5", "--num-proc", "1,2", "--pages-per-file", "2",
                 "--work", str(tmp_path / "work"), "--json", str(out)])
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert [r["pages"] for r in figures["sizes"]] == [3, 5]
    for row in figures["sizes"]:
        assert set(row["builds"]) == {"1", "2"} and row["builds"]["1"]["samples"] == row["builds"]["2"]["samples"] > 0
        assert row["build_over_decode_encode"] > 1 and row["images_encoded"] > 0 and row["speedup_2_over_1"] > 0
    assert figures["rss_growth"] > 0 and figures["rss_growth_num_proc"] == 1
    assert "| 5 | 2 |" in done.stdout
    assert len(list((tmp_path / "work" / "synthetic_5_by2").glob("*.json"))) == 3  # books of 2 pages


def test_heap_benchmark_runs(tmp_path):
    done = _run(["recipes/benchmarks/build_heap.py", "--pages", "3,6", "--work", str(tmp_path), "--top", "3"])
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("3 pages: heap at the card") and lines[1].startswith("6 pages:")
    assert any("per extra page" in line for line in lines)
    assert sum("B/page" in line for line in lines) == 3


def test_build_speed_benchmark_runs(tmp_path):
    out = tmp_path / "speed.json"
    done = _run(["recipes/benchmarks/build_speed.py", "--data", "ai4va_fg_dataset/demo_data", "--out",
                 str(tmp_path / "ds"), "--json", str(out)])
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["pages"] == figures["decode_pages"] > 0 and figures["samples"] > 0
    assert figures["build_num_proc_1_over_decode_encode"] > 1 and figures["decode_encode_all_pages_s"] > 0
    assert "build --num-proc 1 / (decode + encode)" in done.stdout
