"""Make torchvision importable next to a CPU-only torch (run by `make install` and `.ci/run`).

PyPI only ships CUDA builds of torchvision. On a CPU torch its compiled ops fail to load, and
``torchvision/_meta_registrations.py`` then dies at import with
``RuntimeError: operator torchvision::nms does not exist`` because it registers fake kernels for
``torchvision::nms`` / ``torchvision::qnms`` unconditionally. transformers needs torchvision to build
the Qwen2-VL / Qwen2.5-VL video processor, so nothing works (see ../shared/spec/stack.md).

The fix makes those two registrations conditional on ``torchvision.extension._has_ops()``, as the
other registrations in that file already are. It is idempotent, touches nothing when torchvision
already imports (GPU machines, or a fixed release), and prints what it did.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

MARK = "# ai4va-fg: conditional on _has_ops (CPU torch)"


def imports_ok() -> bool:
    """True when ``import torchvision`` works in a fresh interpreter."""
    return subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True).returncode == 0


def main() -> int:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        print("torchvision not installed: nothing to patch")
        return 0
    if imports_ok():
        print("torchvision imports: nothing to patch")
        return 0
    path = Path(spec.origin).parent / "_meta_registrations.py"
    text = path.read_text()
    if MARK not in text:
        pattern = re.compile(r'^@torch\.library\.register_fake\("torchvision::(nms|qnms)"\)\n', re.M)
        text, n = pattern.subn(
            lambda m: f'@(torch.library.register_fake("torchvision::{m.group(1)}") '
            f"if torchvision.extension._has_ops() else (lambda f: f))  {MARK}\n",
            text,
        )
        if n != 2:
            print(f"error: expected 2 nms/qnms registrations in {path}, found {n}", file=sys.stderr)
            return 1
        path.write_text(text)
        print(f"patched {path}")
    if not imports_ok():
        out = subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True, text=True)
        print(f"error: torchvision still fails to import:\n{out.stderr[-2000:]}", file=sys.stderr)
        return 1
    print("torchvision imports")
    return 0


if __name__ == "__main__":
    sys.exit(main())
