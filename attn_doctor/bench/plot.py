"""``--plot FILE``: TFLOP/s against sequence length, one line per backend (matplotlib).

matplotlib is the optional extra ``attn-doctor[plot]``; without it ``--plot`` is a usage error
raised before anything is measured (``require_matplotlib``).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

from attn_doctor.bench.results import BenchResult
from attn_doctor.bench.shapes import BenchShape
from attn_doctor.errors import UsageError


def require_matplotlib() -> None:
    """Raise ``UsageError`` when matplotlib cannot be imported."""
    if importlib.util.find_spec("matplotlib") is None:
        from attn_doctor.plan.pip_command import own_pip

        raise UsageError(
            "--plot needs matplotlib, which is not installed in this environment",
            hint="install matplotlib (attn-doctor's plot extra):\n  "
            + own_pip("install", "attn-doctor[plot]"),
        )


def _group_title(shape: BenchShape) -> str:
    kv = f" ({shape.kv_heads} kv)" if shape.kv_heads != shape.heads else ""
    mask = "causal" if shape.causal else "non-causal"
    return f"{shape.dtype}, {shape.heads} heads{kv} × {shape.head_dim}, {mask}"


def _seqlen_label(seqlen: int) -> str:
    return f"{seqlen // 1024}k" if seqlen >= 1024 and seqlen % 1024 == 0 else str(seqlen)


def write_plot(result: BenchResult, path: Path) -> Path:
    """One panel per (dtype, heads, head dim, mask); x = seqlen (log 2), y = TFLOP/s, with the
    interquartile range as error bars and the measured matmul ceiling as a dashed line."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[tuple[object, ...], BenchShape] = {}
    shapes_by_group: dict[tuple[object, ...], set[BenchShape]] = {}
    for sweep in result.sweeps:
        for p in sweep.points:
            groups.setdefault(p.shape.group, p.shape)
            shapes_by_group.setdefault(p.shape.group, set()).add(p.shape)
    if not groups:
        raise UsageError("--plot: no backend produced a measurement, nothing to draw")
    keys = sorted(groups, key=str)
    cols = min(2, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.4 * cols, 4.2 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        for sweep in result.sweeps:
            pts = sorted(
                (
                    p
                    for p in sweep.points
                    if p.shape.group == key and p.status == "ok" and p.tflops is not None
                ),
                key=lambda p: p.shape.seqlen,
            )
            if not pts:
                continue
            xs = [p.shape.seqlen for p in pts]
            ys = [p.tflops or 0.0 for p in pts]
            lo = [max(0.0, y - (p.tflops_q1 or y)) for p, y in zip(pts, ys, strict=True)]
            hi = [max(0.0, (p.tflops_q3 or y) - y) for p, y in zip(pts, ys, strict=True)]
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=sweep.backend)
        ceiling = result.ceiling_for(groups[key].dtype)
        if ceiling is not None and ceiling.tflops:
            ax.axhline(
                ceiling.tflops, linestyle="--", color="grey", label=f"matmul {ceiling.tflops:.3g}"
            )
        ax.set_xscale("log", base=2)
        seqlens = sorted({s.seqlen for s in shapes_by_group[key]})
        ax.set_xticks(seqlens)
        ax.set_xticklabels([_seqlen_label(s) for s in seqlens])
        ax.minorticks_off()
        ax.set_xlabel("sequence length")
        ax.set_ylabel("TFLOP/s" + (" (fwd+bwd)" if result.mode == "fwd_bwd" else " (fwd)"))
        ax.set_title(_group_title(groups[key]), fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(keys) :]:
        ax.set_visible(False)
    fig.suptitle(f"{result.device_name} · torch {result.torch_version}", fontsize=11)
    fig.tight_layout()
    path = path.expanduser()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)
    return path
