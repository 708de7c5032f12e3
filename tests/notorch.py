"""Run attn-doctor as it runs in an environment without torch (a real one, not a mock).

``python -S`` skips site-packages, where torch is; the folder given on ``PYTHONPATH`` links
back only attn-doctor's own dependencies. Whatever the code asks (``find_spec("torch")``,
the installed distributions' metadata) then answers as in a fresh venv without torch.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from .conftest import REPO_ROOT

# attn-doctor's runtime dependencies (pyproject.toml) and theirs, by import name.
DEPENDENCIES = (
    "click", "rich", "pygments", "markdown_it", "mdurl", "packaging", "psutil", "pynvml",
    "tomli", "typing_extensions",
)  # fmt: skip


def no_torch_path(tmp_path: Path) -> Path:
    """A folder of links to the dependencies only; its path goes on PYTHONPATH."""
    site = tmp_path / "site-without-torch"
    site.mkdir(exist_ok=True)
    for name in DEPENDENCIES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue  # not needed on this Python (tomli on 3.11+)
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        link = site / source.name
        if not link.exists():
            link.symlink_to(source, target_is_directory=source.is_dir())
    return site


def run_without_torch(
    tmp_path: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``attn-doctor ARGS`` where torch is not importable; the suite's isolated HOME holds."""
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("FORCE_COLOR", None)
    env["PYTHONPATH"] = os.pathsep.join((str(REPO_ROOT), str(no_torch_path(tmp_path))))
    return subprocess.run(
        [sys.executable, "-S", "-m", "attn_doctor", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
        timeout=timeout,
    )
