"""Publish a built AI4VA-FG folder as a Hugging Face Hub dataset repository.

The built folder is already in the Hub's layout (Parquet shards + ``README.md`` card with
``configs:``), so publishing uploads it as it is; ``load_dataset("<repo_id>")`` (all tasks, config
``default``) and ``load_dataset("<repo_id>", "<task>")`` then work like on the folder.

Order of the steps, so that a failure leaves the repo as it was:

1. the folder is checked (:func:`check_build_folder`: a finished build whose card's data files all
   exist) and the repo id (``owner/name``): :class:`ValueError` (CLI exit 2);
2. offline mode (``HF_HUB_OFFLINE=1``), the token (``--token``, ``HF_TOKEN`` or ``hf auth login``)
   and ``whoami`` (token valid and not read-only) are checked before anything is written;
3. ``create_repo(exist_ok=True)``, then ONE ``create_commit`` with every file of the build (and the
   deletion of Parquet shards / build files a previous push left that this build no longer has).
   Large files are uploaded as LFS/Xet blobs first, but the repo only changes when the commit lands,
   so a failed push shows nothing half-uploaded.

Every Hub, network or authentication failure is raised as a :class:`HubError` whose message is one
line saying what is wrong and what to do (CLI exit 1).
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .export import BUILD_MARKER

UPLOAD_IGNORE = ["*.partial", ".*"]
"""Files never uploaded (matched against every part of the path): unfinished shards and hidden
files or folders."""

STALE_PATTERNS = ["*.parquet", BUILD_MARKER, "contact_sheet.png"]
"""Repo files written by a build: those the pushed build does not have are deleted in the same
commit (a previous build's extra shards); any other file in the repo is left alone."""

TOKENS_URL = "https://huggingface.co/settings/tokens"

LOGIN_HINT = "run `hf auth login` (the old `huggingface-cli login` no longer works), set HF_TOKEN, or pass --token"


class HubError(RuntimeError):
    """A push that failed at the Hub, the network or authentication; ``str()`` is one line."""


def check_build_folder(folder: str | os.PathLike) -> list[str]:
    """The files of a finished AI4VA-FG build to upload, as sorted POSIX paths relative to ``folder``.

    Hidden files/folders and ``*.partial`` shards (:data:`UPLOAD_IGNORE`) are left out.

    Raises:
        ValueError: ``folder`` does not exist, is not a folder, lacks ``README.md`` or
            ``build_report.json``, its card has no ``configs:``, or a data file the card lists is
            missing (an unfinished or edited build). The message says to rebuild.
    """
    from huggingface_hub.repocard import metadata_load

    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"{root} {'is not a folder' if root.exists() else 'does not exist'}; "
                         "give the --out folder of `ai4va-fg build`")
    missing = [name for name in ("README.md", BUILD_MARKER) if not (root / name).is_file()]
    if missing:
        raise ValueError(f"{root} is not a built AI4VA-FG dataset: missing {', '.join(missing)} "
                         "(give the --out folder of `ai4va-fg build`)")
    configs = (metadata_load(root / "README.md") or {}).get("configs") or []
    if not configs:
        raise ValueError(f"{root / 'README.md'} has no `configs:` in its YAML header; rebuild with `ai4va-fg build`")
    files = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not any(fnmatch.fnmatch(part, pat) for part in p.relative_to(root).parts
                                   for pat in UPLOAD_IGNORE)
    )
    listed = {path for c in configs for d in c.get("data_files") or []
              for path in ([d["path"]] if isinstance(d.get("path"), str) else d.get("path") or [])}
    absent = sorted(listed - set(files))
    if absent:
        raise ValueError(f"{root} is incomplete: its card lists {len(absent)} missing data file(s), e.g. "
                         f"{absent[0]}; rebuild with `ai4va-fg build`")
    return files


def check_repo_id(repo_id: str) -> str:
    """``repo_id`` if it is a valid Hub id of the form ``owner/name``.

    Raises:
        ValueError: anything else (no or several ``/``, characters the Hub refuses, ``--``/``..``).
    """
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if not re.fullmatch(r"[^/]+/[^/]+", repo_id or ""):
        raise ValueError(f"repo id {repo_id!r} must look like 'owner/name' (your user or organization name, "
                         "then the dataset name)")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise ValueError(f"repo id {repo_id!r} is not a valid Hub id: {_one_line(str(exc))}") from None
    return repo_id


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _status(exc: Exception) -> int | None:
    return getattr(getattr(exc, "response", None), "status_code", None)


@contextmanager
def _hub_errors(repo_id: str, endpoint: str, who: dict[str, Any] | None) -> Iterator[None]:
    """Turn ``huggingface_hub`` / ``httpx`` errors into one-line :class:`HubError` s."""
    import httpx
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError, OfflineModeIsEnabled

    try:
        yield
    except OfflineModeIsEnabled:
        raise HubError("offline mode is on (HF_HUB_OFFLINE=1): unset HF_HUB_OFFLINE and retry with network "
                       "access") from None
    except LocalTokenNotFoundError:
        raise HubError(f"no Hugging Face token found: {LOGIN_HINT}") from None
    except HfHubHTTPError as exc:
        status = _status(exc)
        detail = _one_line(exc.server_message or "")
        detail = f" (Hub says: {detail})" if detail else ""
        spaces = ""
        if who is not None:
            names = [who.get("name")] + [o.get("name") for o in who.get("orgs") or []]
            spaces = f" as user {who.get('name')!r} (your user and organizations: {', '.join(n for n in names if n)})"
        if status == 401:
            raise HubError(f"the Hub rejected the token (401 Unauthorized){detail}: it is invalid or expired; "
                           f"create a write token at {TOKENS_URL}, then {LOGIN_HINT}") from None
        if status == 403:
            raise HubError(f"no write access to dataset repo {repo_id}{spaces} (403 Forbidden){detail}: check "
                           "the repo id's owner, or use a token with write access to it") from None
        if status == 404:
            raise HubError(f"dataset repo {repo_id} not found and not creatable{spaces} (404){detail}: check the "
                           "repo id") from None
        raise HubError(f"the Hub at {endpoint} answered {status or 'an error'} for {repo_id}"
                       f"{detail or ': ' + _one_line(str(exc))[:300]}; retry later") from None
    except (httpx.TransportError, ConnectionError, TimeoutError) as exc:
        raise HubError(f"cannot reach the Hugging Face Hub at {endpoint} ({type(exc).__name__}: "
                       f"{_one_line(str(exc))[:200]}): check the network (or HF_ENDPOINT) and retry") from None
    except ValueError as exc:  # the Hub refused the card's YAML, or answered something unreadable
        raise HubError(f"the Hub at {endpoint} refused the upload to {repo_id}: {_one_line(str(exc))[:300]}") from None


def push_to_hub(folder: str | os.PathLike, repo_id: str, *, private: bool = False, token: str | None = None,
                commit_message: str = "Upload AI4VA-FG dataset") -> str:
    """Create (or reuse) the dataset repo ``repo_id`` and upload ``folder`` to it in one commit.

    Args:
        folder: a folder written by :func:`ai4va_fg_dataset.build.build`.
        repo_id: ``"owner/name"`` on the Hub (``owner``: your user or one of your organizations).
        private: create the repo private (an existing repo keeps its visibility).
        token: a Hub write token; ``None`` uses ``HF_TOKEN`` / the cached ``hf auth login``.
        commit_message: message of the commit.

    Returns:
        the URL of the dataset repo (``{endpoint}/datasets/{repo_id}``).

    Raises:
        ValueError: ``folder`` is not a finished build (:func:`check_build_folder`) or ``repo_id`` is
            not a valid ``owner/name`` (:func:`check_repo_id`); nothing was contacted.
        HubError: offline mode, no token, a rejected or read-only token, no write access, a repo that
            cannot be found or created, a network failure or any other Hub error (one-line message);
            the repo has no new commit.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, constants
    from huggingface_hub.utils import get_token

    root = Path(folder)
    files = check_build_folder(root)
    check_repo_id(repo_id)
    if constants.is_offline_mode():
        raise HubError("offline mode is on (HF_HUB_OFFLINE=1): unset HF_HUB_OFFLINE and retry with network access")
    token = token or get_token()
    if not token:
        raise HubError(f"no Hugging Face token found: {LOGIN_HINT}")
    api = HfApi(token=token)
    who = None
    with _hub_errors(repo_id, api.endpoint, who):
        who = api.whoami()
    role = ((who.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        raise HubError(f"the token of user {who.get('name')!r} is read-only: create a write token at "
                       f"{TOKENS_URL}, then {LOGIN_HINT}")
    with _hub_errors(repo_id, api.endpoint, who):
        repo = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        present = set(api.list_repo_files(repo_id, repo_type="dataset"))
        stale = sorted(p for p in present - set(files)
                       if any(fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(Path(p).name, pat) for pat in STALE_PATTERNS))
        operations = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(root / f)) for f in files]
        operations += [CommitOperationDelete(path_in_repo=p) for p in stale]
        api.create_commit(repo_id, operations, repo_type="dataset", commit_message=commit_message,
                          commit_description=f"{len(files)} files from an `ai4va-fg build` folder"
                          + (f"; {len(stale)} stale files of a previous build removed" if stale else ""))
    return str(getattr(repo, "url", repo))
