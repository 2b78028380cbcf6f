"""How the AI4VA-FG build scales with the number of pages and of processes (issue 13).

For each size in ``--pages`` (default 200, 1000, 5000) a SYNTHETIC AI4VA-schema set is written
(``python -m ai4va_fg_dataset.synthetic --pages N --pages-per-file 100``: one COCO JSON per book of
100 pages, the layout of large sets such as Manga109, one XML per book; kept under ``--work`` for the
next run), then:

* ``ai4va-fg build --source synthetic --num-proc P`` runs in a child process for each ``P`` of
  ``--num-proc`` (default 1 and 2), ``--repeat`` times; the figures are those of the fastest run.
  Peak RSS is sampled every 50 ms with psutil: of the build's main process, and of its whole
  process tree (main + workers, summed);
* the plain codec work on the same pages, in a child process, single-threaded: decoding every page
  (PIL ``open`` + ``convert("RGB")``) and encoding it once with the build's codec
  (:func:`ai4va_fg_dataset.core.images.encode_image`, PNG level 1); and the same decode plus one encode
  per image the build drew (the rows whose image is not the untouched page file): the codec floor of
  a build that writes those images.

Reported per size: pages/s, peak RSS (main, tree), the ratio of the single-process build to each
codec baseline, and the speed-up of ``--num-proc 2`` over 1. Targets (issue 13): peak RSS at the
largest size within 1.2x of the smallest and under 1 GiB; speed-up >= 1.7; single-process build
within 3x of plain decode + encode. Prints a Markdown table and writes JSON (``--json``); the
1-minute load average before each run is recorded, since figures taken on a busy machine are slower.

    .venv/bin/python recipes/benchmarks/scaling.py --pages 200,1000,5000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CODEC_KEYS = ("decode_encode_s", "decode_encode_per_image_s", "images_encoded")

TARGETS = {"rss_growth_max": 1.2, "rss_max_mib": 1024.0, "speedup_min": 1.7, "codec_ratio_max": 3.0}

_CODEC = r'''
import io, json, sys, time
from pathlib import Path
from PIL import Image
from ai4va_fg_dataset.core.images import encode_image
spec = json.load(sys.stdin)
pages, repeats = spec["pages"], spec["encodes"]
def decode(p):
    with Image.open(p) as im:
        rgb = im.convert("RGB")
        rgb.info["source_format"] = im.format
        return rgb
t = time.perf_counter()
for p in pages:
    encode_image(decode(p))
once = time.perf_counter() - t
t = time.perf_counter()
for p in pages:
    image = decode(p)
    for _ in range(repeats.get(p, 0)):
        encode_image(image)
per_image = time.perf_counter() - t
print(json.dumps({"decode_encode_s": once, "decode_encode_per_image_s": per_image}))
'''


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def run_measured(cmd: list[str], interval: float = 0.05) -> tuple[float, float, float, subprocess.CompletedProcess]:
    """Run ``cmd``; ``(wall_s, peak_main_rss_mib, peak_tree_rss_mib, completed)`` (RSS sampled)."""
    import psutil

    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    main = psutil.Process(proc.pid)
    peak_main = peak_tree = 0
    while proc.poll() is None:
        try:
            rss = main.memory_info().rss
            tree = rss + sum(c.memory_info().rss for c in main.children(recursive=True))
            peak_main, peak_tree = max(peak_main, rss), max(peak_tree, tree)
        except psutil.Error:
            pass
        time.sleep(interval)
    out, err = proc.communicate()
    wall = time.perf_counter() - t
    return wall, peak_main / 2**20, peak_tree / 2**20, subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def synthetic_set(work: Path, n: int, per_file: int) -> Path:
    """The folder of an ``n``-page synthetic set under ``work``, ``per_file`` pages per COCO JSON
    (written once; ``--source synthetic --path FOLDER`` loads every JSON of it)."""
    folder = work / f"synthetic_{n}_by{per_file}"
    done = folder / ".complete"
    if not done.is_file():
        subprocess.run([sys.executable, "-m", "ai4va_fg_dataset.synthetic", "--out", str(folder), "--pages", str(n),
                        "--pages-per-file", str(per_file)], check=True, capture_output=True)
        done.touch()
    return folder


def page_files(folder: Path) -> list[str]:
    """The page image paths of a synthetic set folder, from its COCO JSON files."""
    return [str(folder / im["file_name"]) for ann in sorted(folder.glob("*.json"))
            for im in json.loads(ann.read_text())["images"]]


def drawn_images(out: Path, folder: Path) -> dict[str, int]:
    """``{page image path: rows whose image the build encoded}`` (rows not equal to the page file)."""
    import pyarrow.parquet as pq

    pages = {Path(p).stem: p for p in page_files(folder)}
    sizes = {path: os.path.getsize(path) for path in pages.values()}
    counts: dict[str, int] = {}
    for shard in out.rglob("*.parquet"):
        for batch in pq.ParquetFile(shard).iter_batches(columns=["page_id", "image"], batch_size=64):
            for page_id, image in zip(batch.column("page_id").to_pylist(), batch.column("image").to_pylist()):
                path = pages.get(page_id.rsplit("/", 1)[-1])  # synthetic/<set>/<file stem>
                if path is None:
                    continue
                data = image["bytes"]
                if len(data) == sizes[path] and data == Path(path).read_bytes():
                    continue
                counts[path] = counts.get(path, 0) + 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", default="200,1000,5000", help="comma-separated set sizes (pages)")
    parser.add_argument("--num-proc", default="1,2", help="comma-separated --num-proc values")
    parser.add_argument("--repeat", type=int, default=1, help="runs per (size, num-proc); the fastest is kept")
    parser.add_argument("--pages-per-file", type=int, default=100, help="pages per COCO JSON of a synthetic set")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "bench" / "scale")
    parser.add_argument("--json", type=Path, default=REPO / "build" / "bench" / "scaling.json")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the builds already measured in --json whose output folder is still there "
                             "(the JSON is saved after every build), measuring only what is missing")
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.pages.split(",")]
    procs = [int(x) for x in args.num_proc.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, "
               f"{round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB, "
               f"Python {platform.python_version()}")
    measured: dict[tuple[int, int], dict] = {}
    codecs: dict[int, dict] = {}
    if args.resume and args.json.is_file():
        for old in json.loads(args.json.read_text()).get("sizes", []):
            for p, run in old["builds"].items():
                if (args.work / f"out_{old['pages']}_p{p}" / "build_report.json").is_file():
                    measured[(old["pages"], int(p))] = run
            if "decode_encode_s" in old:
                codecs[old["pages"]] = {k: old[k] for k in CODEC_KEYS}

    results: list[dict] = []

    def save(done: bool) -> dict:
        figures = {"machine": machine, "targets": TARGETS, "complete": done, "sizes": results}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        return figures

    for n in sizes:
        ann = synthetic_set(args.work, n, args.pages_per_file)
        row: dict = {"pages": n, "builds": {}}
        results.append(row)
        for p in procs:
            if (n, p) in measured:
                row["builds"][p] = measured[(n, p)]
                print(f"{n} pages, --num-proc {p}: {measured[(n, p)]} (from {args.json})", file=sys.stderr, flush=True)
                continue
            best = None
            for _ in range(args.repeat):
                out = args.work / f"out_{n}_p{p}"
                cmd = [sys.executable, "-m", "ai4va_fg_dataset.cli", "build", "--source", "synthetic", "--path", str(ann),
                       "--out", str(out), "--seed", "0", "--num-proc", str(p)]
                load = os.getloadavg()[0]
                wall, rss_main, rss_tree, done = run_measured(cmd)
                if done.returncode != 0:
                    print(done.stdout[-3000:], done.stderr[-3000:], sep="\n", file=sys.stderr)
                    return done.returncode
                run = {"wall_s": round(wall, 2), "pages_per_s": round(n / wall, 2), "peak_rss_main_mib": round(rss_main),
                       "peak_rss_tree_mib": round(rss_tree), "load_average_before": round(load, 2),
                       "samples": json.loads((out / "build_report.json").read_text())["total_samples"]}
                print(f"{n} pages, --num-proc {p}: {run}", file=sys.stderr, flush=True)
                if best is None or run["wall_s"] < best["wall_s"]:
                    best = run
            row["builds"][p] = best
            save(False)
        if n in codecs:  # the codec work of these pages does not depend on the builds
            codec = codecs[n]
        else:
            encodes = drawn_images(args.work / f"out_{n}_p{procs[0]}", ann)
            spec = {"pages": sorted(set(page_files(ann))), "encodes": encodes}
            codec = json.loads(subprocess.run([sys.executable, "-c", _CODEC], input=json.dumps(spec), env=_env(),
                                              check=True, capture_output=True, text=True).stdout)
            codec = {**{k: round(v, 2) for k, v in codec.items()}, "images_encoded": sum(encodes.values())}
        row.update(codec)
        one = row["builds"].get(1)
        if one:
            row["build_over_decode_encode"] = round(one["wall_s"] / codec["decode_encode_s"], 1)
            row["build_over_decode_encode_per_image"] = round(one["wall_s"] / codec["decode_encode_per_image_s"], 2)
        if 1 in row["builds"] and 2 in row["builds"]:
            row["speedup_2_over_1"] = round(row["builds"][1]["wall_s"] / row["builds"][2]["wall_s"], 2)
        save(False)

    figures = save(True)
    if len(results) > 1:  # of the fewest processes measured (1 by default)
        small, large = results[0]["builds"][procs[0]], results[-1]["builds"][procs[0]]
        figures["rss_growth"] = round(large["peak_rss_tree_mib"] / small["peak_rss_tree_mib"], 2)
        figures["rss_growth_num_proc"] = procs[0]
        args.json.write_text(json.dumps(figures, indent=2) + "\n")

    print(f"Build scaling on {figures['machine']} (synthetic pages; `recipes/benchmarks/scaling.py`)\n")
    print("| pages | --num-proc | wall | pages/s | peak RSS main / tree | build / (decode+encode) | "
          "build / (decode + encode per drawn image) | speed-up 2 vs 1 | load avg |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        for p, b in r["builds"].items():
            ratios = (f"{r['build_over_decode_encode']}x | {r['build_over_decode_encode_per_image']}x"
                      if p == 1 and "build_over_decode_encode" in r else " | ")
            speedup = f"{r['speedup_2_over_1']}x" if p == 2 and "speedup_2_over_1" in r else ""
            print(f"| {r['pages']} | {p} | {b['wall_s']} s | {b['pages_per_s']} | {b['peak_rss_main_mib']} / "
                  f"{b['peak_rss_tree_mib']} MiB | {ratios} | {speedup} | {b['load_average_before']} |")
    if "rss_growth" in figures:
        print(f"\npeak RSS (tree, --num-proc {procs[0]}) at {results[-1]['pages']} pages / at {results[0]['pages']} pages: "
              f"{figures['rss_growth']}x (target <= {TARGETS['rss_growth_max']}x)")
    print(f"figures: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
