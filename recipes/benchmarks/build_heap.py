"""What a build keeps on the Python heap as the number of pages grows (issue 13), with tracemalloc.

For each size in ``--pages`` (default 100 and 400) a SYNTHETIC set is written (one COCO JSON per
100-page book, as ``recipes/benchmarks/scaling.py`` does) and built in a child process with
``--num-proc 1`` under :mod:`tracemalloc`; the snapshot is taken when the shards are written, right
before the dataset card. Reported per size: the traced heap then and its peak over the build, and
the allocation sites that grew most between the smallest and the largest size (per extra page).
A build whose memory does not grow with pages shows the same heap at every size.

    .venv/bin/python recipes/benchmarks/build_heap.py --pages 100,400

Peak RSS (which also counts native buffers: PIL, zlib, Arrow) is measured by ``scaling.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_CHILD = r'''
import json, sys, tracemalloc
from rich.console import Console
from ai4va_fg_dataset.build import pipeline
folder, out, snap = sys.argv[1:4]
tracemalloc.start(4)
taken = {}
card = pipeline.write_dataset_card
def at_card(*args, **kwargs):
    taken["current"], taken["peak"] = tracemalloc.get_traced_memory()
    tracemalloc.take_snapshot().dump(snap)
    return card(*args, **kwargs)
pipeline.write_dataset_card = at_card
pipeline.build([("synthetic", folder)], out, seed=0, num_proc=1, console=Console(quiet=True))
print(json.dumps(taken))
'''


def main(argv: list[str] | None = None) -> int:
    import tracemalloc

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", default="100,400", help="comma-separated set sizes (pages)")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "bench" / "heap")
    parser.add_argument("--top", type=int, default=8, help="allocation sites listed")
    args = parser.parse_args(argv)
    sizes = sorted(int(x) for x in args.pages.split(","))
    args.work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    heap = {}
    for n in sizes:
        folder = args.work / f"synthetic_{n}_by100"
        if not (folder / ".complete").is_file():
            subprocess.run([sys.executable, "-m", "ai4va_fg_dataset.synthetic", "--out", str(folder), "--pages", str(n),
                            "--pages-per-file", "100"], check=True, capture_output=True)
            (folder / ".complete").touch()
        out = args.work / f"out_{n}"
        done = subprocess.run([sys.executable, "-c", _CHILD, str(folder), str(out), str(args.work / f"{n}.snap")],
                              env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return done.returncode
        heap[n] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{n} pages: heap at the card {heap[n]['current'] / 2**20:.2f} MiB, peak {heap[n]['peak'] / 2**20:.2f} MiB",
              flush=True)
    small, large = sizes[0], sizes[-1]
    extra = large - small
    print(f"\n{large} vs {small} pages: heap {(heap[large]['current'] - heap[small]['current']) / extra / 1024:+.2f} KiB "
          f"per extra page, peak {(heap[large]['peak'] - heap[small]['peak']) / extra / 1024:+.2f} KiB per extra page")
    before = tracemalloc.Snapshot.load(str(args.work / f"{small}.snap"))
    after = tracemalloc.Snapshot.load(str(args.work / f"{large}.snap"))
    print(f"allocation sites that grew most ({large} vs {small} pages):")
    for stat in after.compare_to(before, "lineno")[: args.top]:
        frame = stat.traceback[0]
        print(f"  {stat.size_diff / extra:+8.0f} B/page  {frame.filename}:{frame.lineno}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
