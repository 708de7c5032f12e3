"""Put a faster, verified SDPA kernel first in torch's dispatch, and put it back.

Only on evidence: the one decision names a kernel to ``activate`` when it passed its kernel
check and a bench run on this machine measured it faster than what SDPA's default dispatch
runs. ``ATTN_DOCTOR_SDPA_PRIORITY=0`` (or ``off``/``false``/``no``) turns it off.

This module saves ``torch._C._get_sdp_priority_order()`` itself and restores exactly that
list. That torch's ``sdpa_kernel(..., set_priority=True)`` does not restore the order is
unverified; the lazy first-call cuDNN preference explains the record (on an H200 with torch
2.11 the order was [3, 1, 2, 0, 4] after the block because the first SDPA call, before it, had
put cuDNN first). ``tests/test_runtime_sdpa_priority.py`` checks it on a GPU.
``torch._C._set_sdp_priority_order`` exists from torch 2.6 (pytorch#140467); on older torch
nothing is changed and the reason is recorded.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from attn_doctor.backends import BACKENDS, BackendName

ENV_PRIORITY = "ATTN_DOCTOR_SDPA_PRIORITY"
_OFF = frozenset({"0", "off", "false", "no"})


@dataclass(frozen=True, kw_only=True)
class PriorityChange:
    """What was done to torch's SDPA priority order, and why."""

    kernel: BackendName
    applied: bool
    before: tuple[int, ...] = ()
    after: tuple[int, ...] = ()
    reason: str


_state_lock = threading.Lock()
_saved: list[tuple[int, ...]] = []
_last: list[PriorityChange] = []


def disabled(environ: Mapping[str, str]) -> bool:
    """True when ``ATTN_DOCTOR_SDPA_PRIORITY`` turns priority changes off."""
    return environ.get(ENV_PRIORITY, "").strip().lower() in _OFF


def _torch_c() -> Any:
    import torch

    return torch._C


def _member(kernel: BackendName) -> int:
    from torch.nn.attention import SDPBackend

    name = BACKENDS[kernel].sdpa_kernel
    if name is None:
        raise ValueError(f"{kernel} is not an SDPA kernel")
    return int(getattr(SDPBackend, name))


def current_order() -> tuple[int, ...] | None:
    """torch's SDPA priority order now, or None where this torch has no such accessor."""
    getter = getattr(_torch_c(), "_get_sdp_priority_order", None)
    return tuple(int(x) for x in getter()) if getter is not None else None


def _set(order: tuple[int, ...]) -> None:
    _torch_c()._set_sdp_priority_order(list(order))


def _first(order: tuple[int, ...], member: int) -> tuple[int, ...]:
    return (member, *(m for m in order if m != member))


@contextlib.contextmanager
def prefer_sdpa_kernel(kernel: BackendName, reason: str = "") -> Iterator[PriorityChange]:
    """Within the block, SDPA tries ``kernel`` first; the previous order is restored exactly."""
    before = current_order()
    if before is None:
        yield PriorityChange(
            kernel=kernel, applied=False, reason="this torch has no SDPA priority order (< 2.6)"
        )
        return
    after = _first(before, _member(kernel))
    _set(after)
    try:
        yield PriorityChange(kernel=kernel, applied=True, before=before, after=after, reason=reason)
    finally:
        _set(before)


def apply_for_process(kernel: BackendName, reason: str) -> PriorityChange:
    """Put ``kernel`` first for the rest of the process (``restore()`` undoes it)."""
    with _state_lock:
        before = current_order()
        if before is None:
            change = PriorityChange(
                kernel=kernel, applied=False, reason="this torch has no SDPA priority order (< 2.6)"
            )
        else:
            after = _first(before, _member(kernel))
            if not _saved:
                _saved.append(before)
            _set(after)
            change = PriorityChange(
                kernel=kernel, applied=True, before=before, after=after, reason=reason
            )
        _last[:] = [change]
        return change


def restore() -> bool:
    """Put back the order saved by the first ``apply_for_process``; True if anything changed."""
    with _state_lock:
        if not _saved:
            return False
        _set(_saved.pop())
        _last.clear()
        return True


def last_change() -> PriorityChange | None:
    """The change ``apply_for_process`` made in this process and still holds, if any."""
    with _state_lock:
        return _last[0] if _last else None
