"""Publish a built AI4VA-FG folder as a Hugging Face Hub dataset repository.

The built folder is already in the Hub's layout (Parquet shards + ``README.md`` card with
``configs:``), so publishing is ``HfApi.create_repo(repo_type="dataset")`` followed by
``HfApi.upload_folder``; ``load_dataset("<repo_id>", "<task>")`` then works like on the folder.
Needs network access and a write token (``--token`` or the ``HF_TOKEN`` environment variable /
``huggingface-cli login``); not exercised offline except with a mocked ``HfApi``.
"""

from __future__ import annotations

import os
from pathlib import Path

from .export import BUILD_MARKER

UPLOAD_IGNORE = ["*.partial", ".*"]
"""Files never uploaded: unfinished shards and hidden files."""


def push_to_hub(folder: str | os.PathLike, repo_id: str, *, private: bool = False, token: str | None = None,
                commit_message: str = "Upload AI4VA-FG dataset") -> str:
    """Create (or reuse) the dataset repo ``repo_id`` and upload ``folder`` to it.

    Args:
        folder: a folder written by :func:`ai4va_fg_dataset.build.build`.
        repo_id: ``"user/name"`` on the Hub.
        private: create the repo private.
        token: a Hub token; ``None`` uses ``HF_TOKEN`` / the cached login.

    Returns:
        the URL of the dataset repo.

    Raises:
        ValueError: ``folder`` is not a built AI4VA-FG dataset (no ``README.md`` card or no
            ``build_report.json``), or ``repo_id`` is not ``"owner/name"``.
    """
    from huggingface_hub import HfApi

    root = Path(folder)
    missing = [name for name in ("README.md", BUILD_MARKER) if not (root / name).is_file()]
    if missing:
        raise ValueError(f"{root} is not a built AI4VA-FG dataset: missing {', '.join(missing)}")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"repo id {repo_id!r} must look like 'owner/name'")
    api = HfApi(token=token)
    repo = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(folder_path=str(root), repo_id=repo_id, repo_type="dataset",
                      commit_message=commit_message, ignore_patterns=UPLOAD_IGNORE)
    return str(getattr(repo, "url", repo))
