"""The only code that reads the machine. Every probe returns facts; none raises.

``probe_environment`` assembles the full ``Environment``. Anything that imports the user's
packages (torch, flash_attn, xformers, unsloth) runs in a child process with a timeout.
"""

from __future__ import annotations

from attn_doctor.facts import Environment


def probe_environment(*, deep: bool = False, timeout: float = 60.0) -> Environment:
    """Read every fact about this machine. Never imports torch in this process."""
    raise NotImplementedError("probe layer: being written")
