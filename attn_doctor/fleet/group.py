"""Group nodes by the facts that decide attention backends; find the outliers and why.

Pure: nodes in, a ``FleetReport`` out. The deciding facts are the NVIDIA driver (and the CUDA
it supports), the GPU models and count, torch's version, build and C++ ABI, every attention
package's version and build label, each ``--deep`` import result, the C library, the Python
ABI and the OS/CPU architecture. Nodes with the same facts and the same verdict (state, best
backend, error and warning findings) form a group. The largest group is the reference; every
other node is an outlier, shown with the facts and findings that set it apart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from attn_doctor.backends import BACKENDS
from attn_doctor.diagnosis import Diagnosis
from attn_doctor.facts import Environment
from attn_doctor.fleet.decide import best_recommendation
from attn_doctor.fleet.types import (
    Fact,
    FactDifference,
    FindingSummary,
    FleetGroup,
    FleetReport,
    NodeFailure,
    NodeInput,
    NodeState,
    Outlier,
    UnreadableInput,
)

ATTENTION_PACKAGES: tuple[str, ...] = tuple(
    sorted(
        {info.distribution for info in BACKENDS.values() if info.distribution is not None}
        # transformers decides which attn_implementation values load; triton carries
        # FlexAttention and flash-attn-4's kernels.
        | {"transformers", "triton", "pytorch-triton-rocm", "triton-windows"}
    )
)
"""Distributions whose version and build decide which attention backend works."""

NOT_INSTALLED = "not installed"
NOT_RECORDED = "not recorded"
"""A ``--deep`` fact (an import, torch's runtime view) that this node's snapshot lacks."""


def _gpus(env: Environment) -> str:
    if not env.gpus:
        return "none"
    counts: Counter[str] = Counter()
    for gpu in env.gpus:
        arch = f"sm{gpu.sm}" if gpu.sm is not None else gpu.gfx_arch
        counts[f"{gpu.name} ({arch})" if arch else gpu.name] += 1
    return ", ".join(f"{n}x {label}" for label, n in sorted(counts.items()))


def _package(env: Environment, name: str) -> str | None:
    pkg = env.package(name)
    if pkg is None:
        return None
    build = ", ".join(f"{k}={v}" for k, v in pkg.build_info)
    return f"{pkg.version} ({build})" if build else pkg.version


def deciding_facts(env: Environment) -> tuple[Fact, ...]:
    """The facts of ``env`` that decide attention backends, in a fixed order."""
    facts: list[tuple[str, str | None]] = []
    host, py = env.host, env.python
    facts.append(("os", f"{host.os} {host.arch or '?'}"))
    libc = f"{host.libc} {host.libc_version or '?'}" if host.libc else None
    facts.append(("glibc" if host.libc in (None, "glibc") else "libc", libc))
    minor = ".".join(py.version.split(".")[:2])
    facts.append(("python", f"{minor} ({py.abi_tag})" if py.abi_tag else minor))
    drv = env.driver
    if drv.version or drv.cuda_version:
        facts.append(("driver", f"{drv.version or '?'} (CUDA {drv.cuda_version or '?'})"))
    else:  # no NVIDIA GPU: no driver to speak of; with one: the driver could not be read
        facts.append(("driver", None if env.nvidia_gpus else "none"))
    facts.append(("gpus", _gpus(env)))
    torch = env.torch
    if torch is None:
        facts.append(("torch", NOT_INSTALLED))
    else:
        flavour = torch.cuda or torch.hip
        facts.append(
            ("torch", f"{torch.version} ({torch.build}{' ' + flavour if flavour else ''})")
        )
        abi = None if torch.cxx11_abi is None else str(torch.cxx11_abi)
        facts.append(("torch C++ ABI", abi))
    rt = env.torch_runtime
    if rt is not None:
        seen = "error" if rt.error else f"cuda_available={rt.cuda_available}"
        facts.append(("torch runtime", f"{seen}, devices={rt.device_count}"))
    facts.extend((name, _package(env, name)) for name in ATTENTION_PACKAGES)
    facts.extend((f"import {res.module}", res.status) for res in env.imports)
    return tuple(
        Fact(name=name, value=value if value is not None else "unknown")
        for name, value in facts
        if not (name in ATTENTION_PACKAGES and value is None)
    )


@dataclass(frozen=True)
class _Checked:
    node: NodeInput
    facts: tuple[Fact, ...]
    diagnosis: Diagnosis
    state: NodeState
    best: str | None
    attn_implementation: str | None
    problems: tuple[FindingSummary, ...]

    def key(self) -> tuple[object, ...]:
        return (self.facts, self.state, self.best, tuple(p.id for p in self.problems))


def _problems(diagnosis: Diagnosis) -> tuple[FindingSummary, ...]:
    seen: dict[str, FindingSummary] = {}
    for f in diagnosis.findings:
        if f.severity in ("error", "warning") and f.id not in seen:
            seen[f.id] = FindingSummary(id=f.id, severity=f.severity, title=f.title, fix=f.fix)
    return tuple(seen.values())


def _check(
    node: NodeInput, env: Environment, diagnose: Callable[[Environment], Diagnosis]
) -> _Checked:
    diagnosis = node.diagnosis if node.diagnosis is not None else diagnose(env)
    best = best_recommendation(diagnosis)
    ready = best is not None and best.usable_now and not diagnosis.has_errors
    return _Checked(
        node=node,
        facts=deciding_facts(env),
        diagnosis=diagnosis,
        state="ready" if ready else "not-ready",
        best=best.backend if best is not None else None,
        attn_implementation=best.attn_implementation if best is not None else None,
        problems=_problems(diagnosis),
    )


def _differences(facts: Sequence[Fact], reference: Sequence[Fact]) -> tuple[FactDifference, ...]:
    mine = {f.name: f.value for f in facts}
    ref = {f.name: f.value for f in reference}
    names = list(mine) + [n for n in ref if n not in mine]
    diffs = []
    for n in names:
        absent = NOT_INSTALLED if n in ATTENTION_PACKAGES or n == "torch" else NOT_RECORDED
        value, reference_value = mine.get(n, absent), ref.get(n, absent)
        if value != reference_value:
            diffs.append(FactDifference(name=n, value=value, reference=reference_value))
    return tuple(diffs)


def build_report(
    nodes: Iterable[NodeInput],
    diagnose: Callable[[Environment], Diagnosis],
    unreadable: Sequence[UnreadableInput] = (),
) -> FleetReport:
    """Group ``nodes``; ``diagnose`` gives a node's diagnosis when it brought none;
    ``unreadable``: the inputs that held no node, listed as such."""
    checked: list[_Checked] = []
    failures: list[NodeFailure] = []
    for node in nodes:
        if node.environment is None:
            reason = node.failure or "no facts"
            failures.append(NodeFailure(node=node.name, source=node.source, reason=reason))
        else:
            checked.append(_check(node, node.environment, diagnose))
    by_key: dict[tuple[object, ...], list[_Checked]] = {}
    for item in checked:
        by_key.setdefault(item.key(), []).append(item)
    # Largest first; among equals, ready before not, then by first node name.
    ordered = sorted(
        by_key.values(), key=lambda ms: (-len(ms), ms[0].state != "ready", ms[0].node.name)
    )
    groups: list[FleetGroup] = []
    outliers: list[Outlier] = []
    for gid, members in enumerate(ordered, start=1):
        head = members[0]
        groups.append(
            FleetGroup(
                id=gid,
                nodes=tuple(m.node.name for m in members),
                state=head.state,
                best_backend=head.best,
                attn_implementation=head.attn_implementation,
                facts=head.facts,
                problems=head.problems,
            )
        )
        if gid == 1:
            continue
        ref = ordered[0][0]
        ref_ids = {p.id for p in ref.problems}
        for m in members:
            outliers.append(
                Outlier(
                    node=m.node.name,
                    group=gid,
                    state=m.state,
                    best_backend=m.best,
                    differences=_differences(m.facts, ref.facts),
                    findings=tuple(p for p in m.problems if p.id not in ref_ids),
                )
            )
    ready = sum(1 for c in checked if c.state == "ready")
    bests = {c.best for c in checked}
    same = not failures and len(checked) > 0 and len(bests) == 1 and None not in bests
    total = len(checked) + len(failures)
    return FleetReport(
        nodes=total,
        ready=ready,
        failed=len(failures),
        same_best_backend=same,
        verdict=_verdict(total, ready, len(failures), groups, same, unreadable=len(unreadable)),
        groups=tuple(groups),
        outliers=tuple(outliers),
        failures=tuple(failures),
        unreadable=tuple(unreadable),
    )


def _verdict(
    total: int, ready: int, failed: int, groups: list[FleetGroup], same: bool, *, unreadable: int
) -> str:
    bad = f"{unreadable} input{'s' if unreadable != 1 else ''} unreadable"
    if total == 0:
        return f"no nodes; {bad}" if unreadable else "no nodes"
    parts = [f"{ready} of {total} nodes ready"]
    if unreadable:
        parts.append(bad)
    if failed:
        parts.append(f"{failed} could not be checked")
    if len(groups) > 1:
        parts.append(f"{len(groups)} groups ({len(groups[0].nodes)} nodes in the largest)")
    if same and groups:
        parts.append(f"best backend everywhere: {groups[0].best_backend}")
    elif groups:
        bests = sorted({g.best_backend or "none" for g in groups})
        parts.append("best backends differ: " + ", ".join(bests))
    return "; ".join(parts)
