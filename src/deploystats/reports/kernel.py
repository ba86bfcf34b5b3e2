"""The Jupyter kernel reports run in: always the interpreter running deploystats (DESIGN §7).

The kernelspec is installed under sys.prefix with a name unique to this interpreter, so a
user's own `python3` kernelspec can never decide which Python (and which deploystats) a
report is computed with.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from deploystats.errors import DeploystatsError


def kernel_name() -> str:
    """`deploystats-<digest of sys.executable>`: one spec per interpreter."""
    digest = hashlib.sha256(sys.executable.encode()).hexdigest()[:12]
    return f"deploystats-{digest}"


def kernel_spec() -> dict[str, object]:
    return {
        "argv": [
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
            # the kernel listens on 127.0.0.1 only; its "TCP without encryption" warning
            # would reach every report run's terminal
            "--IPKernelApp.log_level=ERROR",
        ],
        "display_name": f"deploystats ({Path(sys.executable).parent.parent.name})",
        "language": "python",
        "metadata": {"debugger": False},
    }


def ensure_kernel() -> str:
    """Install (or refresh) the kernelspec under sys.prefix; return its name."""
    name = kernel_name()
    folder = Path(sys.prefix) / "share" / "jupyter" / "kernels" / name
    spec = json.dumps(kernel_spec(), indent=1, sort_keys=True)
    path = folder / "kernel.json"
    try:
        if not path.exists() or path.read_text(encoding="utf-8") != spec:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(spec, encoding="utf-8")
            tmp.replace(path)
    except OSError as exc:
        raise DeploystatsError(
            f"cannot install the report kernel into {folder}: {exc.strerror}; "
            "run deploystats from a virtual environment you can write to"
        ) from None
    return name
