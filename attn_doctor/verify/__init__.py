"""attn-doctor verify: real kernel launches against a reference, and a small model forward.

Importing this package imports no torch: every check runs in a child process.
"""

from __future__ import annotations

from attn_doctor.verify.runner import (
    BackendVerdict,
    VerifyReport,
    verify_backends,
    verify_usable,
)

__all__ = ["BackendVerdict", "VerifyReport", "verify_backends", "verify_usable"]
