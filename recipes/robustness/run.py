"""Run the hostile-input cases and print (and optionally write) the robustness table.

Usage::

    python recipes/robustness/run.py [--out FILE] [--fast] [--only NAME[,NAME...]] [--area AREA]
                                     [--jobs N] [--list]

Cases come from the modules in :data:`MODULES` (each exposes ``CASES: list[cases.Case]``; a module
that does not exist yet is skipped with a note). Every case runs in a child process in a session of
its own with an empty temporary working folder; a case that overruns its ``timeout_s`` is killed with
everything it started and counts as ``hang``; an exception escaping the case counts as ``traceback``.

The summary counts: inputs tried, handled, clear errors, silently wrong, tracebacks, hangs, data
lost (and cases not run here). ``--out FILE`` writes the table as Markdown (``.md``) or JSON
(``.json``). Exit status: 0 when no case is silently wrong, a traceback, a hang or data lost; 1
otherwise; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
for _path in (HERE.parents[1], HERE):  # the repo (ai4va_fg_dataset) and the case modules
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from cases import Case, Outcome

MODULES = ("builder_cases", "parser_judge_cases")
"""Case modules, in table order."""

COLUMNS = [
    ("inputs tried", None),
    ("handled", Outcome.HANDLED),
    ("clear errors", Outcome.CLEAR_ERROR),
    ("silently wrong", Outcome.SILENTLY_WRONG),
    ("tracebacks", Outcome.TRACEBACK),
    ("hangs", Outcome.HANG),
    ("data lost", Outcome.DATA_LOST),
    ("not run", Outcome.NOT_RUN),
]


def load_cases() -> tuple[list[Case], list[str]]:
    """Every case of :data:`MODULES` and notes on modules that were skipped (missing)."""
    import importlib

    found: list[Case] = []
    notes = []
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            notes.append(f"{name}.py not found: skipped")
            continue
        found.extend(module.CASES)
    names = [c.name for c in found]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate case names {dupes}")
    return found, notes


def _run_one(case: Case, result_file: Path) -> None:
    """Child-process side: run ``case`` in a fresh folder and write ``{outcome, note}`` as JSON."""
    import shutil
    import traceback

    work = Path(tempfile.mkdtemp(prefix=f"robustness-{case.name}-"))
    try:
        got = case.run(work)
        outcome, note = got if isinstance(got, tuple) else (got, "")
        if not isinstance(outcome, Outcome):
            raise TypeError(f"case returned {outcome!r}, not an Outcome")
    except Exception as exc:  # noqa: BLE001 - an exception escaping a case is a traceback
        outcome, note = Outcome.TRACEBACK, f"{type(exc).__name__}: {exc}"[:200]
        traceback.print_exc()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result_file.write_text(json.dumps({"outcome": outcome.value, "note": str(note)}))


def run_case(case: Case) -> dict:
    """Run ``case`` in a child process (own session); kill it and its children on timeout."""
    with tempfile.TemporaryDirectory(prefix="robustness-result-") as tmp:
        result = Path(tmp) / "result.json"
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", case.name,
                                 "--result", str(result)], start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            output, _ = proc.communicate(timeout=case.timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
            timed_out = True
        seconds = time.perf_counter() - t
        if timed_out:
            row = {"outcome": Outcome.HANG.value, "note": f"killed after {case.timeout_s:.0f} s"}
        elif result.is_file():
            row = json.loads(result.read_text())
        else:
            row = {"outcome": Outcome.TRACEBACK.value,
                   "note": f"case process died (exit {proc.returncode}): {output.strip()[-160:]}"}
    return {"name": case.name, "area": case.area, "description": case.description, "seconds": round(seconds, 1),
            **row}


def summary(rows: list[dict]) -> dict[str, int]:
    """The counts of :data:`COLUMNS` over ``rows``."""
    out = {"inputs tried": len(rows)}
    for label, outcome in COLUMNS[1:]:
        out[label] = sum(r["outcome"] == outcome.value for r in rows)
    return out


def markdown(rows: list[dict], counts: dict[str, int], notes: list[str]) -> str:
    """The table as Markdown: the summary line, then one row per case."""
    lines = ["| " + " | ".join(counts) + " |", "|" + "---:|" * len(counts),
             "| " + " | ".join(str(v) for v in counts.values()) + " |", ""]
    lines += ["| area | case | outcome | s | note |", "|---|---|---|---:|---|"]
    for r in rows:
        note = str(r["note"]).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {r['area']} | {r['name']} | {r['outcome']} | {r['seconds']} | {note} |")
    lines += [""] + [f"- {n}" for n in notes]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring); returns the exit status."""
    parser = argparse.ArgumentParser(description="Run the robustness cases and print the table.")
    parser.add_argument("--out", type=Path, help="write the table to this .md or .json file")
    parser.add_argument("--fast", action="store_true", help="only the cases marked fast")
    parser.add_argument("--only", default=None, help="comma-separated case names")
    parser.add_argument("--area", default=None, help="only the cases of this area (builder, parser, judge...)")
    parser.add_argument("--jobs", type=int, default=2, help="cases run in parallel (default 2)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    all_cases, notes = load_cases()
    if args.child:
        _run_one(next(c for c in all_cases if c.name == args.child), args.result)
        return 0
    chosen = [c for c in all_cases if (not args.fast or c.fast) and (not args.area or c.area == args.area)]
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - {c.name for c in all_cases})
        if unknown:
            parser.error(f"unknown case(s) {unknown}")
        chosen = [c for c in all_cases if c.name in wanted]
    if args.list:
        for c in chosen:
            print(f"{c.area:10} {c.name:32} {'fast ' if c.fast else '     '}{c.description}")
        return 0
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        rows = []
        for row in pool.map(run_case, chosen):
            rows.append(row)
            print(f"{row['outcome']:>15}  {row['area']}/{row['name']}  ({row['seconds']} s)  {row['note'][:110]}",
                  flush=True)
    counts = summary(rows)
    table = markdown(rows, counts, notes)
    print()
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if args.out.suffix == ".json":
            args.out.write_text(json.dumps({"summary": counts, "cases": rows, "notes": notes}, indent=1) + "\n")
        else:
            args.out.write_text(table)
    return 1 if any(Outcome(r["outcome"]).bad for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
