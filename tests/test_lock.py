"""The locks in requirements/ pin every distribution exactly, cover what pyproject.toml asks for, agree
with each other, and are what this environment was installed from (make install / .ci/run)."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)$")
CPU_EXTRAS = ("eval", "train", "deepspeed", "dev")  # what make install / CI installs
GPU_EXTRAS = CPU_EXTRAS + ("vllm",)  # flash-attn compiles against the installed torch: not locked


def _pins(name: str) -> dict[str, Version]:
    """``{canonical name: version}`` of requirements/NAME.lock; any line that is not ``name==version`` fails."""
    pins = {}
    for n, line in enumerate((REPO / "requirements" / f"{name}.lock").read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = PIN.match(line)
        assert m, f"{name}.lock:{n}: not an exact pin: {line!r}"
        pins[canonicalize_name(m["name"])] = Version(m["version"])
    return pins


def _requirements(extras: tuple[str, ...]) -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return reqs


@pytest.mark.parametrize(("lock", "extras"), [("cpu", CPU_EXTRAS), ("gpu", GPU_EXTRAS)])
def test_lock_satisfies_pyproject(lock, extras):
    pins = _pins(lock)
    assert len(pins) > 100
    unmet = [
        f"{r} (locked: {pins.get(canonicalize_name(r.name))})"
        for r in _requirements(extras)
        if canonicalize_name(r.name) not in pins or not r.specifier.contains(pins[canonicalize_name(r.name)], prereleases=True)
    ]
    assert unmet == [], f"pyproject.toml changed without `make lock`: {unmet}"


def test_cpu_and_gpu_locks_agree():
    cpu, gpu = _pins("cpu"), _pins("gpu")
    assert cpu["torch"] == Version("2.13.0+cpu") and gpu["torch"] == Version("2.13.0")
    assert "vllm" not in cpu and "vllm" in gpu
    missing = sorted(set(cpu) - set(gpu))
    assert missing == [], f"in the CPU lock only: {missing}"
    differ = {n: (str(cpu[n]), str(gpu[n])) for n in cpu if n != "torch" and cpu[n] != gpu[n]}
    assert differ == {}


def test_this_environment_is_the_cpu_lock():
    """Every locked distribution is installed at its locked version (the install is the lock)."""
    pins = _pins("cpu")
    wrong = {}
    for name, version in pins.items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (str(version), str(installed))
    assert wrong == {}, f"installed versions differ from requirements/cpu.lock (run make install): {wrong}"
