"""``verify_backends``: kernel checks and model checks for a set of backends, one verdict each.

Everything that imports torch runs in child processes (``attn_doctor.verify._child``), so this
module is safe to import from ``check`` and ``install``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from attn_doctor.backends import BACKENDS, BackendName
from attn_doctor.verify.kernels import KernelReport, check_kernels
from attn_doctor.verify.model_check import (
    ImplResult,
    ModelReport,
)
from attn_doctor.verify.ops import KERNEL_BACKENDS
from attn_doctor.verify.subproc import run_child
from attn_doctor.verify.unsloth_check import UnslothReport

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
    requested: bool = False
    """Named by the caller: a requested backend that is not verified fails the run."""
    from_record: bool = False
    """Judged from its record (``wheels_index/backends.toml``) without starting a child:
    the record alone says it cannot run here (no CUDA device, not installed)."""

    @property
    def verified(self) -> bool:
        """At least one kernel case (or unsloth's model run) ran and was checked, and passed."""
        return self.passed is True


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    """The whole run: one verdict per backend, plus the raw model report."""

    device: str
    backends: tuple[BackendVerdict, ...]
    model: ModelReport | None
    ok: bool
    """No backend failed, every backend named by the caller was verified, and (when none was
    named) at least one backend was verified."""
    verified: int = 0
    """Backends whose checks ran and passed."""
    not_applicable: int = 0
    """Backends that cannot run here (not installed, no CUDA device...): nothing was checked."""
    failed: int = 0
    """Backends that can run here and failed, crashed or hung."""
    summary: str = ""
    """One line: "N verified, M not applicable here", the failures, and why the run fails."""


def _model_impl(backend: BackendName) -> str | None:
    if backend == "xformers":
        return "xformers"
    if backend in ("unsloth", "hub_kernels"):
        return None
    return BACKENDS[backend].attn_implementation


def probe_cuda(*, timeout: float = 120.0, python: str | None = None) -> tuple[bool, str]:
    """Whether torch (in a child process) sees a CUDA device, and in words what it sees."""
    outcome = run_child(["device"], timeout=timeout, python=python)
    data = outcome.data if outcome.status == "ok" and outcome.data is not None else None
    if data is None:
        return False, f"torch could not be asked ({outcome.status}: {outcome.reason})"
    if data.get("cuda") is True:
        return True, f"torch sees {data.get('count', 'a')} CUDA device(s)"
    built = data.get("torch_cuda")
    torch_version = f"torch {data.get('torch_version') or ''}".strip()
    if built is None:
        return False, f"{torch_version} is a build without CUDA"
    return False, f"{torch_version} (CUDA {built}) sees no CUDA device"


def detect_device(*, timeout: float = 120.0, python: str | None = None) -> str:
    """``"cuda"`` when torch (in a child process) sees a CUDA device, else ``"cpu"``."""
    return "cuda" if probe_cuda(timeout=timeout, python=python)[0] else "cpu"


def _same_python(python: str | None) -> bool:
    """``python`` is attn-doctor's own interpreter (by path: two venvs of one base interpreter
    resolve to the same file, and are still two environments)."""
    from attn_doctor.probe.interpreter import is_this_interpreter

    return is_this_interpreter(python)


def _cpu_build_here(python: str | None) -> bool:
    """attn-doctor's own torch is a CPU-only build, read from its files (no import, no
    child): then no CUDA device can be seen, and asking torch in a child only costs time."""
    if not _same_python(python):
        return False
    import importlib.metadata

    from attn_doctor.probe.torch_meta import probe_torch

    try:
        dist = importlib.metadata.distribution("torch")
    except importlib.metadata.PackageNotFoundError:
        return False
    facts, _ = probe_torch({"torch": dist})
    return facts is not None and facts.build == "cpu"


def record_reason(backend: BackendName, device: str, *, python: str | None = None) -> str | None:
    """Why ``backend`` cannot run on ``device``, from its record alone (no child, no torch),
    or None when only a child can tell.

    The record's ``verify.cpu`` and vendors say whether it has a kernel for the device; the
    installed distributions (read from package metadata, only for attn-doctor's own
    interpreter) say whether it is there at all. The wording matches the child's
    (``attn_doctor.verify.ops.available_ops``).
    """
    from attn_doctor.verify.ops import CPU_BACKENDS

    record = BACKENDS[backend]
    if record.verify.kind == "none":
        return f"{record.title} is not checked by verify yet"
    on_cuda = device.startswith("cuda")
    has_cpu = backend in CPU_BACKENDS or (record.verify.kind == "model" and record.verify.cpu)
    if not on_cuda and not has_cpu:
        return "needs a CUDA device"
    if on_cuda and record.vendors == ("cpu",):
        return "CPU-only kernel"
    if _same_python(python):
        from attn_doctor.adapters.base import distribution_reason

        return distribution_reason(record)
    return None


class _Steps:
    """Progress: "[3/7] label, about 40 s left" from the mean time of the finished steps."""

    def __init__(self, total: int, say: Callable[[str], None]) -> None:
        self.total = total
        self.done = 0
        self.spent = 0.0
        self._say = say

    def start(self, label: str) -> None:
        if self.done >= self.total:
            self.total = self.done + 1
        left = ""
        if self.done:
            seconds = self.spent / self.done * (self.total - self.done)
            left = f", about {_duration(seconds)} left"
        else:
            left = ", estimating the time left"
        self._say(f"[{self.done + 1}/{self.total}] {label}{left}")

    def finish(self, seconds: float) -> None:
        self.done += 1
        self.spent += seconds

    def drop(self, count: int = 1) -> None:
        self.total = max(self.done, self.total - count)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min"


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
    *,
    model_not_run: str | None = None,
) -> BackendVerdict:
    """One backend's verdict. ``model_not_run``: why the model step did not run at all
    ("not run, because transformers is not installed"): a note, never a failure."""
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
        if (
            model_not_run is None
            and model_reason is not None
            and failure is None
            and model_results == ()
        ):
            failure = model_reason
    notes = _notes(kernel, model_results) if usable else ()
    if usable and model_not_run is not None:
        notes = (f"model check {model_not_run}", *notes)
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


def _model_not_run(report: ModelReport | None, python: str | None) -> str | None:
    """Why the model step could not run here (a fact of the machine, not a failure)."""
    if report is None:
        if _same_python(python):
            import importlib.util

            if importlib.util.find_spec("transformers") is None:
                return "not run, because transformers is not installed"
        return None
    reason = report.reason or ""
    if not report.results and reason.startswith("import transformers failed: ModuleNotFound"):
        return "not run, because transformers is not installed"
    return None


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

    ``device`` None: CUDA when torch sees a device, else CPU. Raises ``UsageError`` when
    ``device`` asks for CUDA and torch sees none, or when ``model`` cannot be read.
    ``python`` runs the children under another interpreter (the environment being verified).
    ``progress`` receives one line per step, with the step count and an estimate of the time
    left (for a spinner on stderr). A backend its record says cannot run here (no CUDA
    device, not installed) is judged without starting a child. Never raises for a backend's
    sake: a crash, a hang or a wrong answer is a verdict.

    Backends named in ``backends`` are *requested*: one that is not verified (cannot run
    here, or failed) makes ``ok`` false. With none named, ``ok`` is false when a backend
    failed or when nothing at all was verified.
    """
    from attn_doctor.errors import UsageError

    def say(text: str) -> None:
        if progress is not None:
            progress(text)

    requested = bool(backends)
    chosen: tuple[BackendName, ...] = (
        tuple(dict.fromkeys(backends)) if backends else (*KERNEL_BACKENDS, "unsloth")
    )
    if device is not None and device.startswith("cuda"):
        say("asking torch for a CUDA device")
        has_cuda, seen = probe_cuda(python=python)
        if not has_cuda:
            raise UsageError(
                f"--device {device}: {seen}",
                hint="Run `attn-doctor check` for the reason, or verify on the CPU "
                "(--device cpu, or leave --device out).",
            )
        dev = device
    elif device is not None:
        dev = device
    elif _cpu_build_here(python):
        dev = "cpu"  # torch's files say it has no GPU backend: no child needed to ask it
    else:
        say("asking torch for a CUDA device")
        dev = detect_device(python=python)
    not_here: dict[BackendName, str] = {}
    for backend in chosen:
        reason = record_reason(backend, dev, python=python)
        if reason is not None:
            not_here[backend] = reason
    runnable = [b for b in chosen if b not in not_here]
    kernel_steps = [b for b in runnable if b in KERNEL_BACKENDS]
    steps = _Steps(len(kernel_steps) + (1 if include_model else 0) + ("unsloth" in runnable), say)
    kernels: dict[BackendName, KernelReport] = {}
    for backend in kernel_steps:
        steps.start(f"{backend}: kernel checks on {dev}")
        kernels[backend] = check_kernels(
            backend, device=dev, timeout=timeout, quick=quick, python=python
        )
        steps.finish(kernels[backend].seconds)
    model_report: ModelReport | None = None
    wanted: list[str] = []
    for backend in runnable:
        impl = _model_impl(backend)
        kernel = kernels.get(backend)
        if impl is None or (kernel is not None and kernel.status == "unavailable"):
            continue
        if impl not in wanted:
            wanted.append(impl)
    not_run = _model_not_run(None, python) if include_model else None
    if include_model and not_run is None and (wanted or model is not None):
        steps.start(f"model checks: {', '.join(wanted)}")
        model_report = _run_model(
            device=dev,
            implementations=("eager", *(w for w in wanted if w != "eager")),
            families=families,
            model=model,
            trust_remote_code=trust_remote_code,
            timeout=timeout,
            python=python,
        )
        steps.finish(model_report.seconds or 0.0)
        not_run = _model_not_run(model_report, python)
        if (
            model is not None
            and not model_report.results
            and (model_report.reason or "").startswith("could not build the model")
        ):
            raise UsageError(
                f"--model {model}: {model_report.reason}",
                hint="give a local directory with a config.json, or a Hub id already in the "
                "local cache (verify reads it offline); add --trust-remote-code for custom code",
            )
    elif include_model:
        steps.drop()
    verdicts = []
    for backend in chosen:
        if backend in not_here:
            verdicts.append(
                BackendVerdict(
                    backend=backend,
                    usable=False,
                    passed=None,
                    failure=not_here[backend],
                    kernel=None,
                    model=(),
                    requested=requested,
                    from_record=True,
                )
            )
            continue
        impl = _model_impl(backend)
        results: tuple[ImplResult, ...] = ()
        if model_report is not None and impl is not None:
            results = tuple(r for r in model_report.results if r.attn_implementation == impl)
        unsloth = None
        if backend == "unsloth":
            steps.start("unsloth: tiny model through FastLanguageModel")
            began = time.monotonic()
            unsloth = _run_unsloth(device=dev, timeout=timeout, python=python)
            steps.finish(time.monotonic() - began)
        verdict = _verdict(
            backend,
            kernels.get(backend),
            results,
            None if model_report is None else model_report.reason,
            unsloth,
            model_not_run=not_run,
        )
        verdicts.append(replace(verdict, requested=requested))
    return _report(dev, tuple(verdicts), model_report)


def _report(
    device: str, verdicts: tuple[BackendVerdict, ...], model: ModelReport | None
) -> VerifyReport:
    """The run's counts, its one-line summary and ``ok`` (see ``verify_backends``)."""
    verified = [v for v in verdicts if v.verified]
    failed = [v for v in verdicts if v.usable and v.passed is False]
    not_applicable = [v for v in verdicts if not v.usable]
    unverified_requested = [v for v in verdicts if v.requested and not v.verified]
    summary = f"{len(verified)} verified, {len(not_applicable)} not applicable here"
    if failed:
        summary += f", {len(failed)} failed ({', '.join(v.backend for v in failed)})"
    ok = not failed
    missing = [v for v in unverified_requested if v.passed is not False]
    if missing:
        ok = False
        summary += "; not verified: " + "; ".join(
            f"{v.backend} ({v.failure or 'nothing could be checked'})" for v in missing
        )
    if not verified and not failed and not missing:
        ok = False
        summary += "; nothing was verified"
    return VerifyReport(
        device=device,
        backends=verdicts,
        model=model,
        ok=ok,
        verified=len(verified),
        not_applicable=len(not_applicable),
        failed=len(failed),
        summary=summary,
    )


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
    Hub kernels (not checked by verify) are listed and fail nothing.
    """
    usable: tuple[BackendName, ...] = tuple(b.backend for b in diagnosis.backends if b.usable)
    if not usable:
        return VerifyReport(
            device=device or "cpu",
            backends=(),
            model=None,
            ok=True,
            summary="check calls no backend usable: nothing to verify",
        )
    report = verify_backends(usable, device=device, timeout=timeout, quick=quick, python=python)
    verdicts = tuple(
        replace(v, requested=False)
        if v.usable or v.backend == "hub_kernels"
        else replace(
            v,
            usable=True,
            passed=False,
            requested=False,
            failure=f"check calls it usable, but verify cannot run it: {v.failure}",
        )
        for v in report.backends
    )
    out = _report(report.device, verdicts, report.model)
    # check's gate is "nothing that check calls usable fails": a machine whose only usable
    # backend is a Hub kernel verifies nothing, and that is not a failure of check.
    ok = out.failed == 0
    return replace(out, ok=ok)
