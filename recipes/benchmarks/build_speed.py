"""Speed of the AI4VA-FG build on a folder of real annotated pages.

Measures, on every page under ``--data`` (default ``../shared/data``, about 200 pages):

* the wall time of the full ``ai4va-fg build --source auto`` in a child process (imports included)
  and the build's own stage timings from ``build_report.json``; target < 30 s on 2 cores;
* the peak RSS of that child (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``); target < 2 GiB;
* the time of ``load_dataset(OUT, task)`` of one built task in a fresh Python with an empty
  ``datasets`` cache (cold: Parquet -> Arrow conversion included); target < 2 s;
* the time to decode every page image with PIL (``Image.open(p).load()``) in this process, and the
  ratio build / decode (how many "decodes of the whole corpus" the build costs);
* the same build with ``--num-proc 1`` (one process) and the plain codec work on the same pages:
  decode every page (``convert("RGB")``) and encode it once with the build's codec
  (:func:`ai4va_fg_dataset.core.images.encode_image`); the ratio of the two is issue 13's "single
  process build within 3x of plain decode + encode".

Prints a Markdown table and writes the figures as JSON (``--json``).

    .venv/bin/python recipes/benchmarks/build_speed.py --data ../shared/data --out build/bench
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ai4va_fg_dataset.core.atomic_dir import replacing_file

REPO = Path(__file__).resolve().parents[2]

TARGETS = {"build_wall_s": 30.0, "peak_rss_mib": 2048.0, "load_dataset_s": 2.0}


def _offline_env(cache: Path) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "HF_DATASETS_CACHE": str(cache / "datasets"), "HF_HOME": str(cache / "home")}


def page_paths(data: Path) -> list[str]:
    """The page image files of the datasets under ``data`` (bad records skipped)."""
    from ai4va_fg_dataset.adapters import detect_sources, load_source
    from ai4va_fg_dataset.errors import BadRecordLog

    paths = []
    for name, path in detect_sources(data):
        paths += [p.image_path for p in load_source(name, path, log=BadRecordLog(skip_bad=True))]
    return paths


def decode_pages(data: Path) -> tuple[int, float]:
    """Decode every page image of the datasets under ``data``; ``(pages, seconds)``."""
    from PIL import Image

    paths = page_paths(data)
    t = time.perf_counter()
    for p in paths:
        with Image.open(p) as im:
            im.load()
    return len(paths), time.perf_counter() - t


def decode_encode_pages(data: Path) -> float:
    """Seconds to decode every page image (RGB) and encode it once with the build's codec."""
    from PIL import Image

    from ai4va_fg_dataset.core.images import encode_image

    paths = page_paths(data)
    t = time.perf_counter()
    for p in paths:
        with Image.open(p) as im:
            rgb = im.convert("RGB")
            rgb.info["source_format"] = im.format
        encode_image(rgb)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "bench" / "ai4va_fg")
    parser.add_argument("--json", type=Path, default=REPO / "build" / "bench" / "build_speed.json")
    parser.add_argument("--task", default="panel_reordering", help="config timed with load_dataset")
    parser.add_argument("--strict", action="store_true", help="build without --skip-bad")
    args = parser.parse_args(argv)

    cmd = [sys.executable, "-m", "ai4va_fg_dataset.cli", "build", "--source", "auto", "--path", str(args.data),
           "--out", str(args.out), "--seed", "0"]
    if not args.strict:
        cmd.append("--skip-bad")
    with tempfile.TemporaryDirectory(prefix="ai4va_bench_") as tmp:
        env = _offline_env(Path(tmp))
        load_before = os.getloadavg()[0]
        t = time.perf_counter()
        build = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        build_wall = time.perf_counter() - t
        if build.returncode != 0:
            print(build.stdout[-4000:], build.stderr[-4000:], sep="\n", file=sys.stderr)
            return build.returncode
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_rss_mib = usage.ru_maxrss / 1024  # KiB on Linux
        build_cpu = usage.ru_utime + usage.ru_stime
        report = json.loads((args.out / "build_report.json").read_text())

        load_code = (f"from datasets import load_dataset; ds = load_dataset({str(args.out)!r}, {args.task!r}); "
                     "print(sum(d.num_rows for d in ds.values()))")
        t = time.perf_counter()
        loaded = subprocess.run([sys.executable, "-c", load_code], env=env, capture_output=True, text=True,
                                check=True)
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", load_code], env=env, capture_output=True, text=True, check=True)
        load_warm_s = time.perf_counter() - t

        one_out = Path(tmp) / "one_process"
        one_cmd = [*cmd[: cmd.index("--out") + 1], str(one_out), *cmd[cmd.index("--out") + 2:], "--num-proc", "1"]
        t = time.perf_counter()
        subprocess.run(one_cmd, env=env, capture_output=True, text=True, check=True)
        build_one_wall = time.perf_counter() - t
        one_timings = json.loads((one_out / "build_report.json").read_text())["timings"]

    n_pages, decode_s = decode_pages(args.data)
    codec_s = decode_encode_pages(args.data)
    shards = sorted(args.out.rglob("*.parquet"))
    figures = {
        "command": " ".join(cmd),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "pages": report["pages"],
        "bad_records_skipped": len(report["bad_records"]),
        "samples": report["total_samples"],
        "counts": report["counts"],
        "build_wall_s": round(build_wall, 2),
        "build_cpu_s": round(build_cpu, 2),
        "load_average_before": round(load_before, 2),
        "build_stage_timings_s": report["timings"],
        "peak_rss_mib": round(peak_rss_mib, 1),
        "load_dataset_task": args.task,
        "load_dataset_rows": int(loaded.stdout.strip().splitlines()[-1]),
        "load_dataset_s": round(load_s, 2),
        "load_dataset_warm_s": round(load_warm_s, 2),
        "decode_pages": n_pages,
        "decode_all_pages_s": round(decode_s, 2),
        "build_over_decode": round(build_wall / decode_s, 1) if decode_s else None,
        "build_num_proc_1_wall_s": round(build_one_wall, 2),
        "build_num_proc_1_stage_timings_s": one_timings,
        "decode_encode_all_pages_s": round(codec_s, 2),
        "build_num_proc_1_over_decode_encode": round(build_one_wall / codec_s, 1) if codec_s else None,
        "output_mib": round(sum(p.stat().st_size for p in shards) / 2**20, 1),
        "targets": TARGETS,
    }
    rows = [
        ("pages (bad records skipped)", f"{figures['pages']} ({figures['bad_records_skipped']})", ""),
        ("samples written", figures["samples"], ""),
        ("build wall time (child process)", f"{figures['build_wall_s']} s", f"< {TARGETS['build_wall_s']:.0f} s"),
        ("build CPU time (user + sys, all threads)", f"{figures['build_cpu_s']} s", ""),
        ("1-min load average before the build", figures["load_average_before"], ""),
        ("  of which load / generate / export",
         " / ".join(f"{report['timings'].get(k, 0):.2f}" for k in ("load_s", "generate_s", "export_s")) + " s", ""),
        ("peak RSS of the build", f"{figures['peak_rss_mib']} MiB", f"< {TARGETS['peak_rss_mib']:.0f} MiB"),
        (f"load_dataset({args.task}) cold, fresh Python", f"{figures['load_dataset_s']} s",
         f"< {TARGETS['load_dataset_s']:.0f} s"),
        (f"load_dataset({args.task}) warm cache", f"{figures['load_dataset_warm_s']} s", ""),
        ("PIL decode of every page image", f"{figures['decode_all_pages_s']} s", ""),
        ("build / decode ratio", f"{figures['build_over_decode']}x", ""),
        ("build with --num-proc 1 (child process)", f"{figures['build_num_proc_1_wall_s']} s", ""),
        ("PIL decode + one encode (build's codec) of every page", f"{figures['decode_encode_all_pages_s']} s", ""),
        ("build --num-proc 1 / (decode + encode)", f"{figures['build_num_proc_1_over_decode_encode']}x", "<= 3x"),
        ("Parquet output", f"{figures['output_mib']} MiB", ""),
    ]
    print(f"`{figures['command']}` on {figures['machine']}\n")
    print("| measure | value | target |\n|---|---:|---:|")
    for name, value, target in rows:
        print(f"| {name} | {value} | {target} |")
    with replacing_file(args.json) as tmp:
        tmp.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
