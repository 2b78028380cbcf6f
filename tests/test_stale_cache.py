"""Nothing stale: ``load_dataset`` never serves another build's rows from the ``datasets`` cache.

datasets 5.2 keys the cache of a local folder on the folder's name and a hash of the card's YAML
only, so a rebuild with moved boxes (same counts, same file names) or another build in a folder of
the same name used to come back from the cache. The card now carries a per-config fingerprint of
the Parquet files (``description: ... data sha256:...``). Each load runs in a fresh interpreter with
one shared ``HF_DATASETS_CACHE``, like a user's successive sessions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from ai4va_fg_dataset.build.dataset_card import CardInfo
from ai4va_fg_dataset.build.export import read_manifest, write_dataset
from ai4va_fg_dataset.schema import Sample

PAGES = [f"acbf/book/{i}" for i in range(4)]
SPLITS = {p: "train" for p in PAGES}

LOAD = """
import hashlib, json, sys
from datasets import load_dataset
ds = load_dataset(sys.argv[1], "depth_comparison", split="train")
print(json.dumps([[r["id"], r["bboxes"], hashlib.sha256(r["image"].tobytes()).hexdigest()] for r in ds]))
"""


def _samples(box_right: float, colour: int) -> list[Sample]:
    return [Sample(id=f"depth_comparison/{p}/0", task="depth_comparison",
                   image=Image.new("RGB", (40, 30), (colour, 10 * i, 0)), question="Which is closer?",
                   choices=["left", "right"], answer="A", answer_type="choice", page_id=p, source="acbf",
                   width=40, height=30, bboxes=[[1.0, 1.0, box_right, 20.0]])
            for i, p in enumerate(PAGES)]


def _load(folder: Path, cache: Path) -> list:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(cache),
           "HF_HOME": str(cache.parent / "hf_home")}
    res = subprocess.run([sys.executable, "-c", LOAD, str(folder)], capture_output=True, text=True, env=env,
                         timeout=300, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_rebuild_and_same_named_builds_never_come_back_from_the_cache(tmp_path):
    cache = tmp_path / "shared_cache"
    a, b = tmp_path / "a" / "out", tmp_path / "b" / "out"
    card = CardInfo(seed=0)
    write_dataset(_samples(10.0, 200), a, splits=SPLITS, card=card)
    first = _load(a, cache)
    assert {tuple(r[1][0]) for r in first} == {(1.0, 1.0, 10.0, 20.0)}

    # rebuild in place: boxes moved, same counts, same file names, same card text otherwise
    write_dataset(_samples(15.0, 200), a, splits=SPLITS, card=card)
    rebuilt = _load(a, cache)
    assert {tuple(r[1][0]) for r in rebuilt} == {(1.0, 1.0, 15.0, 20.0)}

    # another build in a folder of the same name, other images, same counts: its own rows
    write_dataset(_samples(15.0, 50), b, splits=SPLITS, card=card)
    other = _load(b, cache)
    assert [r[:2] for r in other] == [r[:2] for r in rebuilt]  # same ids and boxes...
    assert {r[2] for r in other}.isdisjoint({r[2] for r in rebuilt})  # ...but b's images, not a's
    assert _load(a, cache) == rebuilt

    # the fingerprint is in the card's YAML (what the cache key hashes) and in the manifest
    from huggingface_hub import DatasetCard

    configs = {c["config_name"]: c for c in DatasetCard.load(a / "README.md").data["configs"]}
    assert configs["depth_comparison"]["description"].startswith("AI4VA-FG depth_comparison: data sha256:")
    assert read_manifest(a)["fingerprint"] != read_manifest(b)["fingerprint"]
