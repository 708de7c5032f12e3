"""``check --deep``: import the user's packages in child processes and record what happens.

A broken extension may raise (``undefined symbol: _ZN3c10…``), kill its process with a signal
(SIGSEGV in a CUDA library's initialiser, SIGABRT from a C++ ``terminate``) or hang (a
driver call that never returns). Each import therefore runs in its own ``python -c`` child:

- in a new session (POSIX) / process group (Windows), so a hang is killed with every process
  it started;
- with ``-X faulthandler``, so a crash leaves the Python stack of the crashing import on
  stderr (kept as ``traceback_tail``);
- with the current directory removed from ``sys.path``: the doctor's working directory (a
  flash-attention source checkout, say) must not shadow the installed package;
- reporting its outcome as one JSON line after a marker on stdout, whatever the imported
  module printed before it.

Outcomes: ``ok``; ``error`` (an exception; ``detail`` is its last line as the traceback
module prints it, e.g. ``ImportError: …/flash_attn_2_cuda….so: undefined symbol: …``);
``crashed`` (killed by a signal, ``detail`` = ``SIGSEGV``…; on Windows an NTSTATUS code such
as ``0xC0000005 STATUS_ACCESS_VIOLATION``; or an exit without a result); ``timeout``.

Imports run in parallel (a thread pool waiting on subprocesses) to keep ``--deep`` fast.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from attn_doctor.facts import ImportResult, ImportStatus, TorchRuntimeFacts
from attn_doctor.probe.model_config import SdpaProbeInputs, describe
from attn_doctor.probe.runner import children_end_on_interrupt, run_isolated

_R = TypeVar("_R")

MARKER = "@@attn-doctor-result@@"
TAIL_CHARS = 2000


def _deep_modules() -> tuple[tuple[str, tuple[str, ...]], ...]:
    from attn_doctor.backends import BACKEND_NAMES, BACKENDS

    backends = tuple(
        (dist, BACKENDS[name].modules)
        for name in BACKEND_NAMES
        for dist in BACKENDS[name].distributions
        if BACKENDS[name].modules
    )
    return (
        ("torch", ("torch",)),
        # Every attention package's modules come from its record in backends.toml (flash-attn
        # 2's compiled flash_attn_2_cuda, xformers' _cpp_lib check, flash-attn-4's CuTe module).
        *backends,
        ("transformers", ("transformers",)),
        ("triton", ("triton",)),
        ("pytorch-triton", ("triton",)),
        ("pytorch-triton-rocm", ("triton",)),
        ("pytorch-triton-xpu", ("triton",)),
        ("triton-windows", ("triton",)),
    )


DEEP_MODULES: tuple[tuple[str, tuple[str, ...]], ...] = _deep_modules()
"""(distribution, modules to import when it is installed)."""

TORCH_FIRST: frozenset[str] = frozenset(
    {"flash_attn_2_cuda", "flash_attn_interface", "xformers._cpp_lib"}
)
"""Extension modules that need torch's libraries loaded first, as their packages do: importing
``flash_attn_2_cuda`` alone would fail with ``libc10.so: cannot open shared object file``."""

CHECKS: Mapping[str, str] = {
    "xformers._cpp_lib": (
        "_e = getattr(sys.modules['xformers._cpp_lib'], '_cpp_library_load_exception', None)\n"
        "if _e is not None:\n"
        "    raise _e\n"
    ),
}
"""Code run after a module imports, to surface a failure the package swallows."""

_CHILD_PRELUDE = """\
import sys
if sys.path and sys.path[0] == "":
    del sys.path[0]
import importlib, json, os, time, traceback
MARKER = {marker!r}
TAIL = {tail}
def _report(out):
    sys.stdout.flush()
    sys.stdout.write("\\n" + MARKER + json.dumps(out) + "\\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip interpreter shutdown: a package's atexit hook must not hang us
def _describe(exc):
    t = type(exc)
    name = t.__qualname__
    if t.__module__ not in ("builtins", "__main__"):
        name = t.__module__ + "." + name
    text = str(exc)
    return name + ": " + text if text else name
"""

_IMPORT_BODY = """\
_t0 = time.perf_counter()
try:
    for _pre in {pre!r}:
        importlib.import_module(_pre)
    importlib.import_module({module!r})
{check}except BaseException as _exc:
    _report({{"status": "error", "detail": _describe(_exc),
             "traceback": traceback.format_exc()[-{tail}:],
             "seconds": time.perf_counter() - _t0}})
_report({{"status": "ok", "seconds": time.perf_counter() - _t0}})
"""

_TORCH_BODY = """\
_t0 = time.perf_counter()
out = {}
try:
    import torch
except BaseException as _exc:
    _report({"status": "error", "detail": _describe(_exc),
             "traceback": traceback.format_exc()[-TAIL:]})
def _try(key, fn):
    try:
        out[key] = fn()
    except Exception as _exc:
        out.setdefault("errors", []).append(key + ": " + _describe(_exc))
_try("torch_version", lambda: str(torch.__version__))
_try("torch_cuda", lambda: torch.version.cuda)
_try("cuda_available", lambda: bool(torch.cuda.is_available()))
_try("device_count", lambda: int(torch.cuda.device_count()) if out.get("cuda_available") else 0)
_try("arch_list", lambda: list(torch.cuda.get_arch_list()))
_try("device_capabilities", lambda: ["%d.%d" % torch.cuda.get_device_capability(i)
                                     for i in range(out.get("device_count") or 0)])
_try("device_names", lambda: [torch.cuda.get_device_name(i)
                              for i in range(out.get("device_count") or 0)])
_try("cudnn_version", lambda: torch.backends.cudnn.version()
     if torch.backends.cudnn.is_available() else None)
_try("cxx11_abi", lambda: getattr(torch._C, "_GLIBCXX_USE_CXX11_ABI", None))
_fa = getattr(torch.backends.cuda, "is_flash_attention_available", None)
_try("flash_sdp_available", lambda: bool(_fa()) if _fa is not None else None)
_try("mps_available", lambda: bool(torch.backends.mps.is_available())
     if hasattr(torch.backends, "mps") else None)
def _sdpa_default():
    # What attn_implementation="sdpa" runs (not torch's printed priority list): the
    # dispatcher's own choice for the model's inputs (check --deep --model), else bf16 (fp16
    # before sm80) causal inputs of head dim 128; the inputs used are reported with it.
    choose = getattr(torch, "_fused_sdp_choice", None)
    if choose is None:
        return None
    cuda = bool(out.get("cuda_available"))
    dev = "cuda" if cuda else "cpu"
    want = _SDPA_INPUTS
    dt = torch.float32
    if cuda:
        dt = torch.bfloat16 if torch.cuda.get_device_capability(0)[0] >= 8 else torch.float16
    if want.get("dtype"):
        dt = getattr(torch, want["dtype"])
    heads, dim, seq = want.get("heads") or 16, want.get("head_dim") or 128, 1024
    q = torch.empty(4, heads, seq, dim, dtype=dt, device=dev)
    mask = None
    if want.get("mask"):
        mask = torch.ones(seq, seq, dtype=torch.bool, device=dev).tril().expand(4, 1, seq, seq)
    out["sdpa_inputs_used"] = {"dtype": str(dt).replace("torch.", ""), "head_dim": dim,
                               "heads": heads, "mask": mask is not None}
    names = {0: "sdpa_math", 1: "sdpa_flash" if cuda else "sdpa_cpu_fused",
             2: "sdpa_mem_efficient", 3: "sdpa_cudnn"}
    return names.get(int(choose(q, q, q, mask, 0.0, mask is None)))
_try("sdpa_default_kernel", _sdpa_default)
out["status"] = "ok"
out["seconds"] = time.perf_counter() - _t0
_report(out)
"""

# A few NTSTATUS codes a crashing extension exits with on Windows.
NTSTATUS: Mapping[int, str] = {
    0xC0000005: "STATUS_ACCESS_VIOLATION",
    0xC000001D: "STATUS_ILLEGAL_INSTRUCTION",
    0xC00000FD: "STATUS_STACK_OVERFLOW",
    0xC0000135: "STATUS_DLL_NOT_FOUND",
    0xC0000139: "STATUS_ENTRYPOINT_NOT_FOUND",
    0xC0000409: "STATUS_STACK_BUFFER_OVERRUN",
    0xC0000374: "STATUS_HEAP_CORRUPTION",
}


def describe_exit(returncode: int, *, windows: bool | None = None) -> str:
    """A child's abnormal exit status as text: ``SIGSEGV``, ``0xC0000005
    STATUS_ACCESS_VIOLATION``, or ``exit status 3``."""
    if windows is None:
        windows = sys.platform == "win32"
    if windows:
        code = returncode & 0xFFFFFFFF
        if code >= 0xC0000000:
            name = NTSTATUS.get(code)
            return f"0x{code:08X} {name}" if name else f"NTSTATUS 0x{code:08X}"
        return f"exit status {returncode}"
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


@dataclass(frozen=True, kw_only=True)
class ImportOutcome:
    status: ImportStatus
    payload: dict[str, Any] | None = None
    detail: str | None = None
    traceback_tail: str | None = None
    seconds: float | None = None


def _tail(text: str) -> str | None:
    text = text.strip()
    return text[-TAIL_CHARS:] if text else None


def _parse_marker(stdout: str) -> dict[str, Any] | None:
    idx = stdout.rfind(MARKER)
    if idx < 0:
        return None
    line = stdout[idx + len(MARKER) :].splitlines()[0] if stdout[idx + len(MARKER) :] else ""
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def run_child(
    code: str,
    *,
    timeout: float,
    python: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ImportOutcome:
    """Run ``python -X faulthandler -c code`` and classify how it ended. Never raises."""
    argv = [python or sys.executable, "-X", "faulthandler", "-c", code]
    env = dict(os.environ if environ is None else environ)
    env.setdefault("PYTHONIOENCODING", "utf-8")
    ran = run_isolated(argv, timeout=timeout, env=env)
    if ran.start_error is not None:
        return ImportOutcome(status="error", detail=ran.start_error)
    if ran.timed_out:
        return ImportOutcome(
            status="timeout",
            detail=f"no result within {timeout:g} s; the process was killed",
            traceback_tail=_tail(ran.stderr),
            seconds=ran.seconds,
        )
    payload = _parse_marker(ran.stdout)
    if payload is not None:
        status: ImportStatus = "error" if payload.get("status") == "error" else "ok"
        detail = payload.get("detail")
        tb = payload.get("traceback")
        return ImportOutcome(
            status=status,
            payload=payload,
            detail=detail if isinstance(detail, str) else None,
            traceback_tail=_tail(tb) if isinstance(tb, str) else None,
            seconds=ran.seconds,
        )
    return ImportOutcome(
        status="crashed",
        detail=describe_exit(ran.returncode or 0)
        if ran.returncode != 0
        else "exited (status 0) before reporting a result",
        traceback_tail=_tail(ran.stderr),
        seconds=ran.seconds,
    )


def import_code(module: str) -> str:
    """The child program that imports ``module`` (and runs its check, if any)."""
    pre = ("torch",) if module in TORCH_FIRST else ()
    check = CHECKS.get(module, "")
    check_block = "".join(f"    {line}\n" for line in check.splitlines())
    return _CHILD_PRELUDE.format(marker=MARKER, tail=TAIL_CHARS) + _IMPORT_BODY.format(
        pre=pre, module=module, check=check_block, tail=TAIL_CHARS
    )


def import_in_child(
    module: str,
    *,
    timeout: float,
    python: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ImportResult:
    """Import ``module`` in a child interpreter and report ok / error / crashed / timeout."""
    outcome = run_child(import_code(module), timeout=timeout, python=python, environ=environ)
    return ImportResult(
        module=module,
        status=outcome.status,
        detail=outcome.detail,
        traceback_tail=outcome.traceback_tail,
        seconds=round(outcome.seconds, 3) if outcome.seconds is not None else None,
    )


def import_many(
    modules: Sequence[str],
    *,
    timeout: float,
    python: str | None = None,
    environ: Mapping[str, str] | None = None,
    max_workers: int | None = None,
) -> tuple[ImportResult, ...]:
    """``import_in_child`` for each module, in parallel; results in the given order."""
    if not modules:
        return ()
    workers = max_workers or min(len(modules), max(4, os.cpu_count() or 2))
    with (
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="attn-doctor-import") as ex,
        children_end_on_interrupt(ex),
    ):
        futures = [
            ex.submit(import_in_child, m, timeout=timeout, python=python, environ=environ)
            for m in modules
        ]
        return tuple(f.result() for f in futures)


def modules_to_import(installed: Iterable[str]) -> tuple[str, ...]:
    """The modules ``--deep`` imports, given the installed distributions' canonical names."""
    have = set(installed)
    result: list[str] = []
    for dist, modules in DEEP_MODULES:
        if dist in have:
            result.extend(m for m in modules if m not in result)
    return tuple(result)


def _str_tuple(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return ()


def _opt(value: object, tp: type) -> Any:
    return value if isinstance(value, tp) and not (tp is int and isinstance(value, bool)) else None


def torch_runtime_from_payload(
    payload: Mapping[str, Any], seconds: float | None, inputs_source: str = ""
) -> TorchRuntimeFacts:
    """TorchRuntimeFacts from the torch child's JSON (pure; tested on recorded payloads)."""
    errors = payload.get("errors")
    used = payload.get("sdpa_inputs_used")
    return TorchRuntimeFacts(
        cuda_available=_opt(payload.get("cuda_available"), bool),
        device_count=_opt(payload.get("device_count"), int),
        arch_list=_str_tuple(payload.get("arch_list")),
        cudnn_version=_opt(payload.get("cudnn_version"), int),
        cxx11_abi=_opt(payload.get("cxx11_abi"), bool),
        device_capabilities=_str_tuple(payload.get("device_capabilities")),
        flash_sdp_available=_opt(payload.get("flash_sdp_available"), bool),
        mps_available=_opt(payload.get("mps_available"), bool),
        sdpa_default_kernel=_opt(payload.get("sdpa_default_kernel"), str),
        sdpa_default_inputs=describe(used, inputs_source or SdpaProbeInputs().source)
        if isinstance(used, dict)
        else None,
        error="; ".join(str(e) for e in errors) if isinstance(errors, list) and errors else None,
        torch_version=_opt(payload.get("torch_version"), str),
        torch_cuda=_opt(payload.get("torch_cuda"), str),
        device_names=_str_tuple(payload.get("device_names")),
        seconds=round(seconds, 3) if seconds is not None else None,
    )


def torch_runtime_and_import(
    *,
    timeout: float,
    python: str | None = None,
    environ: Mapping[str, str] | None = None,
    sdpa_inputs: SdpaProbeInputs | None = None,
) -> tuple[ImportResult, TorchRuntimeFacts]:
    """One child imports torch and reports on itself: the ``torch`` import result and the
    runtime facts come from the same process (one ``import torch`` instead of two)."""
    inputs = sdpa_inputs or SdpaProbeInputs()
    code = (
        _CHILD_PRELUDE.format(marker=MARKER, tail=TAIL_CHARS)
        + f"_SDPA_INPUTS = json.loads({json.dumps(json.dumps(inputs.payload()))})\n"
        + _TORCH_BODY
    )
    outcome = run_child(code, timeout=timeout, python=python, environ=environ)
    result = ImportResult(
        module="torch",
        status=outcome.status,
        detail=outcome.detail,
        traceback_tail=outcome.traceback_tail,
        seconds=round(outcome.seconds, 3) if outcome.seconds is not None else None,
    )
    if outcome.status == "ok" and outcome.payload is not None:
        return result, torch_runtime_from_payload(outcome.payload, outcome.seconds, inputs.source)
    reason = outcome.detail or outcome.status
    if outcome.status == "crashed":
        reason = f"import torch crashed: {reason}"
    elif outcome.status == "timeout":
        reason = f"import torch timed out: {reason}"
    elif outcome.status == "error":
        reason = f"import torch failed: {reason}"
    seconds = round(outcome.seconds, 3) if outcome.seconds is not None else None
    return result, TorchRuntimeFacts(error=reason, seconds=seconds)


def probe_torch_runtime(
    *,
    timeout: float,
    python: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> TorchRuntimeFacts:
    """Import torch in a child and record what it says about CUDA, cuDNN, the ABI, MPS."""
    return torch_runtime_and_import(timeout=timeout, python=python, environ=environ)[1]


class ImportBoard:
    """What the ``--deep`` children are doing now, for a progress line (thread-safe).

    ``probe_deep`` calls ``started`` and ``finished``; a spinner on stderr calls ``describe``
    a few times a second. Nothing here prints.
    """

    def __init__(self, *, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._running: dict[str, float] = {}
        self._done = 0
        self._total = 0

    def expect(self, count: int) -> None:
        with self._lock:
            self._total += count

    def started(self, module: str) -> None:
        with self._lock:
            self._running[module] = self._clock()

    def finished(self, module: str) -> None:
        with self._lock:
            self._running.pop(module, None)
            self._done += 1

    def describe(self) -> str:
        """``importing xformers (12 s), flash_attn_2_cuda (12 s) of 60 s each; 3/7 done``."""
        now = self._clock()
        with self._lock:
            running = sorted(self._running.items(), key=lambda kv: kv[1])
            done, total = self._done, self._total
        if not running:
            return f"--deep: {done}/{total} imports done"
        shown = ", ".join(f"{m} ({now - t0:.0f} s)" for m, t0 in running[:4])
        more = f" and {len(running) - 4} more" if len(running) > 4 else ""
        return (
            f"--deep: importing {shown}{more}; timeout {self.timeout:g} s each; {done}/{total} done"
        )


def _tracked(board: ImportBoard | None, module: str, fn: Callable[[], _R]) -> _R:
    if board is None:
        return fn()
    board.started(module)
    try:
        return fn()
    finally:
        board.finished(module)


def probe_deep(
    installed: Iterable[str],
    *,
    timeout: float,
    python: str | None = None,
    environ: Mapping[str, str] | None = None,
    board: ImportBoard | None = None,
    sdpa_inputs: SdpaProbeInputs | None = None,
) -> tuple[tuple[ImportResult, ...], TorchRuntimeFacts | None]:
    """Every ``--deep`` child at once: the imports and, when torch is installed, its runtime
    (whose child also gives the ``torch`` import result). Each child has its own ``timeout``;
    ``board`` (optional) is told which imports run, for a progress line."""
    modules = [m for m in modules_to_import(installed) if m != "torch"]
    with_torch = "torch" in modules_to_import(installed)
    if board is not None:
        board.expect(len(modules) + int(with_torch))
    # At least 4 workers: a hung import holds one for the whole timeout.
    workers = max(1, min(len(modules) + 1, max(4, os.cpu_count() or 2)))
    with (
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="attn-doctor-deep") as ex,
        children_end_on_interrupt(ex),
    ):
        runtime = (
            ex.submit(
                _tracked,
                board,
                "torch",
                lambda: torch_runtime_and_import(
                    timeout=timeout, python=python, environ=environ, sdpa_inputs=sdpa_inputs
                ),
            )
            if with_torch
            else None
        )
        futures = [
            ex.submit(
                _tracked,
                board,
                m,
                functools.partial(
                    import_in_child, m, timeout=timeout, python=python, environ=environ
                ),
            )
            for m in modules
        ]
        results = tuple(f.result() for f in futures)
        if runtime is None:
            return results, None
        torch_result, facts = runtime.result()
        return (torch_result, *results), facts
