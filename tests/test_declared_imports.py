"""Every third-party package the code imports is declared in pyproject.toml, where its users get it.

A package that only arrives through another one (scipy through lmms-eval, once) breaks the installs
that lack that other one. Rules, per top-level package and its install (README "Install in detail"):

* an import at module level must be in the core dependencies, or in the package's own extra
  (``lmms_eval_tasks``: ``eval``; ``trl_rarl``: ``train``): importing the package needs it;
* an import inside a function (an optional backend: vLLM, DeepSpeed, transformers for the vision
  frame) must be declared in the core dependencies or some extra.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
OWN = {"ai4va_fg_dataset", "lmms_eval_tasks", "trl_rarl"}
PACKAGE_EXTRA = {"ai4va_fg_dataset": None, "lmms_eval_tasks": "eval", "trl_rarl": "train"}
NOT_INSTALLED_HERE = {"vllm": ["vllm"], "flash_attn": ["flash-attn"]}  # CUDA-only extras


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    extras = {e: {canonicalize_name(Requirement(r).name) for r in reqs}
              for e, reqs in project["optional-dependencies"].items()}
    return core, extras


def _imports(package: str) -> dict[tuple[str, bool], list[str]]:
    """``{(top-level module, at module level?): [file:line, ...]}`` of the third-party imports in ``package``."""
    found: dict[tuple[str, bool], list[str]] = {}
    for path in sorted((REPO / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        top_level = set(map(id, tree.body))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in OWN or top in sys.stdlib_module_names or top == "__future__":
                    continue
                where = f"{path.relative_to(REPO)}:{node.lineno}"
                found.setdefault((top, id(node) in top_level), []).append(where)
    return found


@pytest.mark.parametrize("package", sorted(PACKAGE_EXTRA))
def test_every_import_is_declared(package):
    core, extras = _declared()
    module_dists = {**packages_distributions(), **NOT_INSTALLED_HERE}
    own_extra = extras[PACKAGE_EXTRA[package]] if PACKAGE_EXTRA[package] else set()
    anywhere = core.union(*extras.values())
    missing = []
    for (module, at_module_level), places in sorted(_imports(package).items()):
        dists = {canonicalize_name(d) for d in module_dists.get(module, [])}
        assert dists, f"{module} (imported at {places[0]}) is not installed and not known to this test"
        allowed = core | own_extra if at_module_level else anywhere
        if not dists & allowed:
            scope = "module level" if at_module_level else "in a function"
            missing.append(f"{module} ({scope}, {places[0]}): none of {sorted(dists)} declared")
    assert missing == [], "imports not declared in pyproject.toml for this package's install:\n" + "\n".join(missing)


def test_the_check_sees_imports():
    """The AST walk finds both kinds (a check that finds nothing would pass for the wrong reason)."""
    found = _imports("trl_rarl")
    assert ("trl", True) in found and ("deepspeed", False) in found
