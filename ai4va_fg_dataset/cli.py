"""``ai4va-fg``: the command line of the AI4VA-FG builder.

Subcommands::

    ai4va-fg build --source auto --path DATA --out DIR [--seed 0] [--tasks t1,t2] [--skip-bad]
                   [--source NAME --path P ...] [--image-root DIR] [--manga109-dialog DIR] [--coco-mapping JSON] [--no-contact-sheet]
                   [--max-page-pixels N] [--num-proc N] [--engine local|ray]
                   [--pu-provider openai|gemini --pu-model M [--pu-base-url URL] [--pu-questions N]
                    [--pu-timeout S] [--pu-retries N]]
                   [--review FILE] [--keep-unchecked]
    ai4va-fg audit DIR [--out DIR]  (blind baselines per task and split beside chance: audit.json + audit.md;
                                    exit 0 whatever the scores, 2 on a folder that is not a build;
                                    ai4va_fg_dataset.build.audit)
    ai4va-fg review DIR [--results RUN_DIR] [--review-file FILE] [--port N] [--reviewer NAME]
                                   (browser review of a build on 127.0.0.1: verdicts to a review file
                                    that ``build --review FILE`` applies; ai4va_fg_dataset.build.review_app)
    ai4va-fg push-to-hub DIR --repo-id OWNER/NAME [--private] [--token TOKEN]
    ai4va-fg report ...            (lmms_eval_tasks.report: tables from lmms-eval results)
    ai4va-fg eval [--dataset DIR_OR_HUB_ID] LMMS_EVAL_ARGS...
                                   (lmms_eval_tasks.run_eval: lmms-eval with the AI4VA-FG tasks of DIR;
                                    exit 1 when an evaluation fails, 2 when a task or the build is missing)

Exit codes: 0 success; 2 bad input (a bad annotation record in strict mode — the message names
the file and the record —, an unknown source or task, a missing path, an output folder that is not
a previous build, an unwritable output location) or bad arguments. Errors are one line on stderr
(``ai4va-fg: error: ...`` / ``ai4va-fg: bad annotation: FILE: RECORD: REASON``), never a traceback.

build ``--out`` safety: it must be missing, empty, or a previous build (recognised only by the
manifest the builder writes, and holding no other file); it may not be or contain an input, the
working directory or a git work tree. The temporary folder is made first, so a read-only location
fails before any work; staging folders of killed builds of the same ``--out`` are removed.

push-to-hub: 0 uploaded (one commit with every file); 2 the folder is not a finished build or the
repo id is not OWNER/NAME (nothing contacted); 1 the Hub could not be written: offline mode
(HF_HUB_OFFLINE=1), no token (``hf auth login`` / HF_TOKEN / --token), a rejected or read-only token,
no write access to the repo, network failure. Errors are one line on stderr, no traceback, and the
repo gets no partial upload (:mod:`ai4va_fg_dataset.build.hub`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .adapters import ADAPTERS
from .schema import TASKS

SOURCES = ("auto", *ADAPTERS)
"""``--source`` values: ``auto`` detects every dataset under ``--path``."""


def _tasks(text: str) -> list[str]:
    tasks = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise argparse.ArgumentTypeError(f"unknown task(s) {unknown or text!r}; choose from {', '.join(TASKS)}")
    return tasks


def _ratios(text: str) -> tuple[float, ...]:
    from .build.splits import split_counts

    try:
        ratios = tuple(float(v) for v in text.split(","))
        split_counts(0, ratios)  # the splitter's own check: 3 non-negative numbers summing to 1
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"--split-ratios {text!r}: give TRAIN,VALIDATION,TEST fractions summing to 1"
        ) from exc
    return ratios


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value


def make_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ai4va-fg`` (all subcommands)."""
    from .build.pipeline import DEFAULT_MAX_PAGE_PIXELS
    from .core.llm import DEFAULT_RETRIES, DEFAULT_TIMEOUT

    parser = argparse.ArgumentParser(prog="ai4va-fg", description="Build and publish the AI4VA-FG benchmark.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log adapter warnings and debug messages")
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="build the dataset from annotated comic pages",
                       description="Build the AI4VA-FG Parquet dataset (one config per task) from annotations.")
    b.add_argument("--source", action="append", choices=SOURCES, required=True,
                   help="adapter of the next --path (repeatable, one per --path); auto detects datasets")
    b.add_argument("--path", action="append", type=Path, required=True,
                   help="annotation file or dataset folder (repeatable, paired with --source in order)")
    b.add_argument("--out", type=Path, required=True, help="output folder (replaced atomically when done)")
    b.add_argument("--seed", type=int, default=0, help="seed of splits and question sampling (default 0)")
    b.add_argument("--split-ratios", type=_ratios, default=None, metavar="TRAIN,VAL,TEST",
                   help="page fractions of train/validation/test (default 0.8,0.1,0.1); splits are by page")
    b.add_argument("--tasks", type=_tasks, default=None, help=f"comma-separated subset of: {', '.join(TASKS)}")
    b.add_argument("--max-per-page", action="append", default=None, metavar="TASK=N",
                   help="at most N items of TASK per page (repeatable; on top of --density), e.g. "
                        "character_identification=8")
    b.add_argument("--density", choices=("default", "paper"), default="default",
                   help="per-page caps: 'default' = each generator's MAX_PER_PAGE (few near-duplicate questions per "
                        "page); 'paper' = ceil of paper Table 3.1 items per page (Char. ID 9, Panel R. 5, Dialog R. 5, "
                        "...), reached where the annotations allow (ai4va_fg_dataset/tasks/density.py)")
    b.add_argument("--skip-bad", action="store_true",
                   help="skip bad annotation records (listed in build_report.json) instead of stopping")
    b.add_argument("--image-root", type=Path, default=None, help="image folder of COCO / AI4VA / Magi sources")
    b.add_argument("--manga109-dialog", type=Path, default=None,
                   help="folder of Manga109Dialog XML files (CC BY 4.0): speaker links of --source manga109")
    b.add_argument("--coco-mapping", type=Path, default=None,
                   help="JSON file of CocoMapping fields (category names -> panel/character/object/balloon, "
                        "attribute keys of identity/depth/pose/text/order) for COCO / AI4VA sources")
    b.add_argument("--no-contact-sheet", action="store_true", help="do not write contact_sheet.png")
    b.add_argument("--num-proc", type=_count, default=None, metavar="N",
                   help="worker processes that decode, generate, draw and encode pages (default or 0: every core); "
                        "the output is identical byte for byte whatever N")
    b.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="run the per-page work in a local process pool (default) or on Ray Data (a running Ray "
                        "cluster when RAY_ADDRESS is set, else a local one; needs the 'scale' extra)")
    b.add_argument("--max-page-pixels", type=_count, default=None, metavar="N",
                   help="largest page image, in pixels (width x height); larger pages are bad records "
                        f"(default {DEFAULT_MAX_PAGE_PIXELS:_}; 0 = no limit of the build's own)")
    b.add_argument("--pu-provider", choices=("openai", "gemini"), default=None,
                   help="VLM provider that writes Panel Understanding questions (needs its API key)")
    b.add_argument("--pu-model", default=None, help="VLM model name (default: the provider's default, e.g. gemini-2.5-flash)")
    b.add_argument("--pu-base-url", default=None, help="OpenAI-compatible endpoint (vLLM, local server)")
    b.add_argument("--pu-questions", type=int, default=None, help="questions per panel (default: the Panel Understanding generator's)")
    b.add_argument("--pu-timeout", type=_positive_float, default=None, metavar="SECONDS",
                   help=f"seconds one VLM request may take before it fails (default {DEFAULT_TIMEOUT:g})")
    b.add_argument("--pu-retries", type=_count, default=None, metavar="N",
                   help=f"retries of a failed or timed-out VLM request (default {DEFAULT_RETRIES}); a panel whose "
                        "requests all fail is skipped and counted; worst case per panel: (N+1) x --pu-timeout")
    b.add_argument("--review", type=Path, default=None, metavar="FILE",
                   help="review file written by `ai4va-fg review` (JSON Lines): drop rejected items, use fixed "
                        "keys and panel orders; counts go to build_report.json and the card")

    b.add_argument("--keep-unchecked", action="store_true",
                   help="keep panel / dialog items of pages whose annotated order disagrees with the checked "
                        "reading order (default: excluded and listed in build_report.json)")

    a = sub.add_parser("audit", help="blind baselines of a built dataset (audit.json + audit.md)",
                       description="Score blind baselines (answer / letter priors, text-only, layout heuristics) "
                                   "per task and split of a built dataset, beside chance; writes audit.json and "
                                   "audit.md (atomically). Exits 0 whatever the scores; non-zero only on bad input.")
    a.add_argument("folder", type=Path, help="a dataset folder written by `ai4va-fg build`")
    a.add_argument("--out", type=Path, default=None, help="folder for audit.json / audit.md (default: the dataset folder)")

    r = sub.add_parser("review", help="review a built dataset in the browser (local, 127.0.0.1)",
                       description="Browse, filter, accept / reject / fix items and verify page panel orders of "
                                   "a build; decisions go to a review file that `build --review FILE` applies.")
    r.add_argument("folder", type=Path, help="the built dataset folder")
    r.add_argument("--results", type=Path, default=None, metavar="RUN_DIR",
                   help="an lmms-eval output folder (samples_*.jsonl): show each model's answer, score and zoom crops")
    r.add_argument("--review-file", type=Path, default=None, metavar="FILE",
                   help="where decisions are written (default: ai4va-fg-review.jsonl beside the first source's "
                        "annotations, as named in build_report.json); never inside the build folder")
    r.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: a free one from 7860)")
    r.add_argument("--reviewer", default=os.environ.get("USER", ""), help="name written with each decision (default $USER)")

    p = sub.add_parser("push-to-hub", help="upload a built folder to a Hugging Face dataset repo",
                       description="Upload a built AI4VA-FG folder to a Hugging Face dataset repo in one commit.",
                       epilog="Exit codes: 0 uploaded; 2 not a finished build folder or a bad repo id; "
                              "1 offline, no/invalid/read-only token, no write access or network failure "
                              "(one-line message on stderr; the repo is left unchanged).")
    p.add_argument("folder", type=Path, help="the built dataset folder")
    p.add_argument("--repo-id", required=True, help="OWNER/NAME of the dataset repo")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--token", default=os.environ.get("HF_TOKEN"),
                   help="Hub write token (default: $HF_TOKEN, else the cached login)")

    sub.add_parser("report", add_help=False, help="result tables from lmms-eval outputs (lmms_eval_tasks.report)")
    sub.add_parser("eval", add_help=False,
                   help="lmms-eval on the AI4VA-FG tasks of a build (lmms_eval_tasks.run_eval; other args go to lmms-eval)")
    return parser


def _build(args: argparse.Namespace) -> int:
    from .build.pipeline import SourceSpec, build
    from .tasks.density import parse_max_per_page

    if len(args.source) != len(args.path):
        raise ValueError(f"{len(args.source)} --source but {len(args.path)} --path; give one --path per --source")
    options: dict = {"image_root": args.image_root} if args.image_root else {}
    if args.manga109_dialog:
        options["dialog"] = args.manga109_dialog
    if args.coco_mapping:
        from .adapters import CocoMapping

        try:
            options["mapping"] = CocoMapping.from_file(args.coco_mapping)
        except (OSError, ValueError, TypeError, RecursionError) as exc:  # JSONDecodeError is a ValueError
            raise ValueError(f"--coco-mapping {args.coco_mapping}: {exc}") from exc
    sources = [SourceSpec(name, path, options) for name, path in zip(args.source, args.path)]
    pu_client = None
    if args.pu_provider:
        from .core.llm import make_client

        limits = {k: v for k, v in (("timeout", args.pu_timeout), ("max_retries", args.pu_retries)) if v is not None}
        pu_client = make_client(args.pu_provider, args.pu_model, base_url=args.pu_base_url, **limits)
    elif args.pu_model or args.pu_base_url or args.pu_timeout is not None or args.pu_retries is not None:
        raise ValueError("--pu-model / --pu-base-url / --pu-timeout / --pu-retries need --pu-provider")
    ratios = {"ratios": args.split_ratios} if args.split_ratios else {}
    pixels = {} if args.max_page_pixels is None else {"max_page_pixels": args.max_page_pixels or None}
    build(sources, args.out, seed=args.seed, **ratios, tasks=args.tasks, skip_bad=args.skip_bad, pu_client=pu_client,
          pu_questions=args.pu_questions, contact_sheet=not args.no_contact_sheet, **pixels,
          protect=[args.coco_mapping] if args.coco_mapping else [], review=args.review,
          density=args.density, max_per_page=parse_max_per_page(args.max_per_page),
          num_proc=args.num_proc or None, engine=args.engine, keep_unchecked=args.keep_unchecked)
    return 0


def _audit(args: argparse.Namespace) -> int:
    from .build.audit import AUDIT_JSON, AUDIT_MD, audit_folder, audit_markdown
    from .build.export import read_manifest, write_manifest

    audit = audit_folder(args.folder, args.out)
    in_place = args.out is None or args.out.resolve() == Path(args.folder).resolve()
    if in_place and read_manifest(args.folder) is not None:
        # Audited in place: the rewritten audit files are the builder's own, so the manifest lists them
        # with their new checksums (the next `ai4va-fg build --out` of this folder may replace it).
        write_manifest(args.folder)
    print(audit_markdown(audit), end="")
    out = args.out or args.folder
    print(f"wrote {out / AUDIT_JSON} and {out / AUDIT_MD}; {len(audit['flagged'])} flagged row(s)")
    return 0


def _review(args: argparse.Namespace) -> int:
    from .build.review_app import serve

    serve(args.folder, results=args.results, review_file=args.review_file, port=args.port, reviewer=args.reviewer)
    return 0


def _push(args: argparse.Namespace) -> int:
    from .build.hub import HubError, push_to_hub

    try:
        url = push_to_hub(args.folder, args.repo_id, private=args.private, token=args.token)
    except HubError as exc:  # Hub / network / auth: exit 1 (bad folder or repo id: ValueError, exit 2)
        print(f"ai4va-fg: push-to-hub failed: {exc}", file=sys.stderr)
        return 1
    print(f"uploaded {args.folder} to {url}")
    return 0


PLUGIN_GROUP = "ai4va_fg.commands"
"""Entry-point group of ``ai4va-fg`` subcommands that other packages provide (``report``, ``eval``)."""


def plugin_commands() -> dict:
    """``{name: EntryPoint}`` of the subcommands registered under :data:`PLUGIN_GROUP`."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ai4va-fg`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in plugin_commands():
        # `report` and `eval` belong to the evaluation package; they register themselves under the
        # entry-point group PLUGIN_GROUP (pyproject.toml), so the dataset CLI names no eval module.
        return int(plugin_commands()[argv[0]].load()(argv[1:]) or 0)
    args = make_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from .errors import AnnotationError

    try:
        if args.command == "build":
            return _build(args)
        if args.command == "review":
            return _review(args)
        if args.command == "audit":
            return _audit(args)
        return _push(args)
    except AnnotationError as exc:
        print(f"ai4va-fg: bad annotation: {exc}\n(use --skip-bad to skip bad records and list them in "
              "build_report.json)", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError) as exc:
        print(f"ai4va-fg: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. --out on a read-only file system or without write permission
        print(f"ai4va-fg: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
