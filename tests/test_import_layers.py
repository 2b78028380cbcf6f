"""The import graph of the three packages: one-way layers, no circles (issue 10, architecture.md).

Layers, lowest first: ``ai4va_fg_dataset.core`` (shared runtime) <- ``ai4va_fg_dataset`` page model,
adapters, task generators <- ``ai4va_fg_dataset.build`` <- ``ai4va_fg_dataset.cli``; evaluation
(``lmms_eval_tasks``) and training (``trl_rarl``) sit beside the builder and may use only ``core``
and the task declarations (``ai4va_fg_dataset.tasks.spec``) plus the row schema. Every ``import``
statement counts, including those inside functions (a lazy import still couples two modules).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("ai4va_fg_dataset", "lmms_eval_tasks", "trl_rarl")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of the project modules that ``path`` imports (any depth in the file)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return {m for m in found if m.split(".")[0] in PACKAGES}


def _graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")]
    modules = {_module_name(p): p for p in files}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for target in _imports(path):
            while target and target not in modules:  # `from pkg import name` -> the module pkg
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
        graph.setdefault(name, set())
    return graph


GRAPH = _graph()


def _layer(module: str) -> str:
    for prefix, layer in (
        ("ai4va_fg_dataset.core", "core"),
        ("ai4va_fg_dataset.tasks.spec", "spec"),
        ("ai4va_fg_dataset.schema", "spec"),
        ("ai4va_fg_dataset.build", "build"),
        ("ai4va_fg_dataset.cli", "cli"),
        ("ai4va_fg_dataset", "dataset"),
        ("lmms_eval_tasks", "eval"),
        ("trl_rarl", "train"),
    ):
        if module == prefix or module.startswith(prefix + "."):
            return layer
    raise AssertionError(module)


ALLOWED = {  # layer -> layers it may import (besides itself)
    "core": set(),
    "spec": {"core"},
    "dataset": {"core", "spec"},
    "build": {"core", "spec", "dataset"},
    "cli": {"core", "spec", "dataset", "build"},
    "eval": {"core", "spec"},
    "train": {"core", "spec"},
}


def test_the_graph_sees_the_packages():
    assert "ai4va_fg_dataset.core.geometry" in GRAPH and "trl_rarl.rewards" in GRAPH
    assert "ai4va_fg_dataset.core.geometry" in GRAPH["ai4va_fg_dataset.core.zoom_tool"]


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_down_the_layers(module):
    layer = _layer(module)
    bad = sorted(t for t in GRAPH[module] if _layer(t) != layer and _layer(t) not in ALLOWED[layer])
    assert not bad, f"{module} ({layer}) imports {bad}, which its layer may not use"


def _package_free(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Drop edges into a package's own ``__init__`` from its submodules (Python runs it anyway)."""
    return {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}


def test_no_import_cycles():
    graph = _package_free(GRAPH)
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_trl_rarl_exports_lazily():
    """``from trl_rarl import RARLTrainer, RARLConfig`` works, and importing the package alone loads no
    trl / torch (like ``from trl import GRPOTrainer``)."""
    import subprocess
    import sys

    code = ("import sys, trl_rarl; assert 'trl' not in sys.modules and 'torch' not in sys.modules; "
            "assert {'RARLTrainer', 'RARLConfig'} <= set(dir(trl_rarl)); print('ok')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr
    import trl_rarl
    from trl_rarl.config import RARLConfig
    from trl_rarl.trainer import RARLTrainer

    assert trl_rarl.RARLConfig is RARLConfig and trl_rarl.RARLTrainer is RARLTrainer
    assert sorted(trl_rarl.__all__) == sorted(trl_rarl._LAZY)  # every lazy name exported, nothing else
    with pytest.raises(AttributeError, match="nope"):
        trl_rarl.nope  # noqa: B018
