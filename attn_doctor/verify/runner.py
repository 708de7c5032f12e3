"""``verify_backends``: kernel checks and model checks for a set of backends, one verdict each.

Everything that imports torch runs in child processes (``attn_doctor.verify._child``), so this
module is safe to import from ``check`` and ``install``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from attn_doctor.backends import BACKENDS, BackendName
from attn_doctor.verify.kernels import KernelReport, check_kernels
from attn_doctor.verify.model import (
    ImplResult,
    ModelReport,
    UnslothReport,
)
from attn_doctor.verify.ops import KERNEL_BACKENDS
from attn_doctor.verify.subproc import run_child

if TYPE_CHECKING:
    from attn_doctor.diagnosis import Diagnosis

DEFAULT_TIMEOUT = 600.0
"""Seconds each child (one backend's kernels, or the model checks) may take."""


@dataclass(frozen=True, kw_only=True)
class BackendVerdict:
    """One backend: its kernel check, its model check, and the verdict."""

    backend: BackendName
    usable: bool
    """The backend can be launched here (it is not 'unavailable'); only usable ones can fail."""
    passed: bool | None
    """True: every check that ran passed; False: one failed, crashed or timed out;
    None: nothing could be checked here."""
    failure: str | None
    """The first failure's text, or why nothing was checked."""
    kernel: KernelReport | None
    model: tuple[ImplResult, ...]
    """The model results for this backend's ``attn_implementation`` (one per family)."""
    unsloth: UnslothReport | None = None
    notes: tuple[str, ...] = ()
    """What was not checked and why (no backward here, unsupported cases, skipped models)."""


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    """The whole run: one verdict per backend, plus the raw model report."""

    device: str
    backends: tuple[BackendVerdict, ...]
    model: ModelReport | None
    ok: bool
    """No usable backend failed."""


def _model_impl(backend: BackendName) -> str | None:
    if backend == "xformers":
        return "xformers"
    if backend in ("unsloth", "hub_kernels"):
        return None
    return BACKENDS[backend].attn_implementation


def detect_device(*, timeout: float = 120.0, python: str | None = None) -> str:
    """``"cuda"`` when torch (in a child process) sees a CUDA device, else ``"cpu"``."""
    outcome = run_child(["device"], timeout=timeout, python=python)
    if outcome.status == "ok" and outcome.data is not None and outcome.data.get("cuda") is True:
        return "cuda"
    return "cpu"


def _run_model(
    *,
    device: str,
    implementations: tuple[str, ...],
    families: tuple[str, ...] | None,
    model: str | None,
    trust_remote_code: bool,
    timeout: float,
    python: str | None,
) -> ModelReport:
    from attn_doctor.errors import SnapshotError
    from attn_doctor.facts import decode

    args = ["model", "--device", device]
    for impl in implementations:
        args += ["--impl", impl]
    for family in families or ():
        args += ["--family", family]
    if model is not None:
        args += ["--model", model]
    if trust_remote_code:
        args.append("--trust-remote-code")
    environ = None
    if model is not None:
        import os

        # Offline: a Hub id is read from the local cache only; nothing is downloaded.
        environ = {**os.environ, "HF_HUB_OFFLINE": "1"}
    outcome = run_child(args, timeout=timeout, python=python, environ=environ)
    reason = outcome.reason
    if outcome.status == "ok" and outcome.data is not None:
        try:
            return decode(ModelReport, outcome.data, "model")
        except SnapshotError as exc:
            reason = f"unreadable child answer: {exc.message}"
    return ModelReport(
        device=device,
        dtype="float32" if device == "cpu" else "bfloat16",
        transformers_version=None,
        results=(),
        declared=(),
        reason=f"model check {outcome.status}: {reason}",
        seconds=outcome.seconds,
    )


def _run_unsloth(*, device: str, timeout: float, python: str | None) -> UnslothReport:
    from attn_doctor.errors import SnapshotError
    from attn_doctor.facts import decode

    if not device.startswith("cuda"):
        return UnslothReport(status="skipped", reason="unsloth needs a CUDA device")
    outcome = run_child(["unsloth", "--device", device], timeout=timeout, python=python)
    if outcome.status == "ok" and outcome.data is not None:
        try:
            return decode(UnslothReport, outcome.data, "unsloth")
        except SnapshotError as exc:
            return UnslothReport(status="error", reason=f"unreadable child answer: {exc.message}")
    return UnslothReport(status="error", reason=f"{outcome.status}: {outcome.reason}")


def _verdict(
    backend: BackendName,
    kernel: KernelReport | None,
    model_results: tuple[ImplResult, ...],
    model_reason: str | None,
    unsloth: UnslothReport | None,
) -> BackendVerdict:
    failure: str | None = None
    usable = True
    checked = False
    if kernel is not None:
        if kernel.status == "unavailable":
            usable = False
            failure = kernel.reason
        elif kernel.status == "passed":
            checked = True
        else:
            checked = True
            failure = f"kernel {kernel.status}: {kernel.reason}"
    if unsloth is not None:
        if unsloth.status == "skipped":
            usable = False
            failure = unsloth.reason
        elif unsloth.status in ("passed", "failed", "error"):
            checked = True
            if unsloth.status != "passed":
                failure = f"unsloth {unsloth.status}: {unsloth.reason}"
    if usable:
        for result in model_results:
            if result.status in ("passed", "failed", "error"):
                checked = True
            if result.status in ("failed", "error") and failure is None:
                failure = (
                    f"model {result.family} {result.attn_implementation} "
                    f"{result.status}: {result.reason}"
                )
        if model_reason is not None and failure is None and model_results == ():
            failure = model_reason
    notes = _notes(kernel, model_results) if usable else ()
    passed: bool | None
    if not usable:
        passed = None
    elif failure is not None:
        passed = False
    else:
        passed = True if checked else None
    return BackendVerdict(
        backend=backend,
        usable=usable,
        passed=passed,
        failure=failure,
        kernel=kernel,
        model=model_results if usable else (),
        unsloth=unsloth,
        notes=notes,
    )


def _notes(kernel: KernelReport | None, model_results: tuple[ImplResult, ...]) -> tuple[str, ...]:
    notes: list[str] = []
    if kernel is not None and kernel.cases:
        unsupported = [c for c in kernel.cases if c.outcome == "unsupported"]
        if unsupported:
            notes.append(
                f"{len(unsupported)} of {len(kernel.cases)} cases unsupported "
                f"({unsupported[0].spec.label}: {unsupported[0].error})"
            )
        no_bwd = [c for c in kernel.cases if c.backward == "unsupported"]
        if no_bwd:
            notes.append(f"forward only: {_sentence(no_bwd[0].error or 'no backward')}")
    for result in model_results:
        if result.status == "passed" and (result.reason or "").startswith("forward only"):
            if not any(n.startswith("forward only") for n in notes):
                notes.append(f"model forward only: {_sentence(result.reason or '')}")
        elif result.status in ("skipped", "unsupported") or (
            result.status == "passed" and result.reason
        ):
            notes.append(
                f"model {result.family} {result.attn_implementation} {result.status}: "
                f"{_sentence(result.reason or '')}"
            )
    # A library's warnings during the run (never a failure), once each.
    if kernel is not None:
        notes += kernel.notes
    for result in model_results:
        notes += result.notes
    return tuple(dict.fromkeys(notes))


def _sentence(text: str) -> str:
    """The first sentence: enough for a table cell; the JSON keeps the whole text."""
    head, dot, _ = text.partition(". ")
    return head + ("." if dot else "")


def verify_backends(
    backends: Sequence[BackendName] | None = None,
    *,
    device: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    model: str | None = None,
    trust_remote_code: bool = False,
    families: tuple[str, ...] | None = None,
    include_model: bool = True,
    quick: bool = False,
    python: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> VerifyReport:
    """Verify ``backends`` (default: every backend with a kernel, plus unsloth) on ``device``.

    ``device`` None: CUDA when torch sees a device, else CPU. Raises ``UsageError`` only when
    ``model`` cannot be read. ``python`` runs the children
    under another interpreter (the environment being verified). ``progress`` receives one line
    per step (for a spinner on stderr). Never raises for a backend's sake: a crash, a hang or a
    wrong answer is a verdict.
    """

    def say(text: str) -> None:
        if progress is not None:
            progress(text)

    chosen: tuple[BackendName, ...] = (
        tuple(dict.fromkeys(backends)) if backends else (*KERNEL_BACKENDS, "unsloth")
    )
    dev = device or detect_device(python=python)
    kernels: dict[BackendName, KernelReport] = {}
    for backend in chosen:
        if backend in KERNEL_BACKENDS:
            say(f"{backend}: kernel checks on {dev}")
            kernels[backend] = check_kernels(
                backend, device=dev, timeout=timeout, quick=quick, python=python
            )
    model_report: ModelReport | None = None
    wanted: list[str] = []
    for backend in chosen:
        impl = _model_impl(backend)
        kernel = kernels.get(backend)
        if impl is None or (kernel is not None and kernel.status == "unavailable"):
            continue
        if impl not in wanted:
            wanted.append(impl)
    if include_model and (wanted or model is not None):
        say(f"model checks: {', '.join(wanted)}")
        model_report = _run_model(
            device=dev,
            implementations=("eager", *(w for w in wanted if w != "eager")),
            families=families,
            model=model,
            trust_remote_code=trust_remote_code,
            timeout=timeout,
            python=python,
        )
        if (
            model is not None
            and not model_report.results
            and (model_report.reason or "").startswith("could not build the model")
        ):
            from attn_doctor.errors import UsageError

            raise UsageError(
                f"--model {model}: {model_report.reason}",
                hint="give a local directory with a config.json, or a Hub id already in the "
                "local cache (verify reads it offline); add --trust-remote-code for custom code",
            )
    verdicts = []
    for backend in chosen:
        impl = _model_impl(backend)
        results: tuple[ImplResult, ...] = ()
        if model_report is not None and impl is not None:
            results = tuple(r for r in model_report.results if r.attn_implementation == impl)
        if backend == "unsloth":
            say("unsloth: tiny model through FastLanguageModel")
        unsloth = (
            _run_unsloth(device=dev, timeout=timeout, python=python)
            if backend == "unsloth"
            else None
        )
        if backend == "hub_kernels":
            verdicts.append(
                BackendVerdict(
                    backend=backend,
                    usable=False,
                    passed=None,
                    failure="Hub kernels are not checked by verify yet",
                    kernel=None,
                    model=(),
                )
            )
            continue
        verdicts.append(
            _verdict(
                backend,
                kernels.get(backend),
                results,
                None if model_report is None else model_report.reason,
                unsloth,
            )
        )
    ok = not any(v.usable and v.passed is False for v in verdicts)
    return VerifyReport(device=dev, backends=tuple(verdicts), model=model_report, ok=ok)


def verify_usable(
    diagnosis: Diagnosis,
    *,
    device: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    quick: bool = False,
    python: str | None = None,
) -> VerifyReport:
    """``check --verify``: verify the backends the diagnosis calls usable.

    A backend the diagnosis calls usable that verify finds unavailable (its import fails in
    the child, no device) is a failure here: the two disagree, and the user relies on check.
    """
    from dataclasses import replace

    usable: tuple[BackendName, ...] = tuple(b.backend for b in diagnosis.backends if b.usable)
    if not usable:
        return VerifyReport(device=device or "cpu", backends=(), model=None, ok=True)
    report = verify_backends(usable, device=device, timeout=timeout, quick=quick, python=python)
    verdicts = tuple(
        v
        if v.usable or v.backend == "hub_kernels"
        else replace(
            v,
            usable=True,
            passed=False,
            failure=f"check calls it usable, but verify cannot run it: {v.failure}",
        )
        for v in report.backends
    )
    ok = not any(v.usable and v.passed is False for v in verdicts)
    return replace(report, backends=verdicts, ok=ok)
