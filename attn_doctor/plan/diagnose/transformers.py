"""Findings about transformers: attn_implementation values, versions, the Hub-kernel
fallback (pure).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from packaging.version import Version

from attn_doctor.backends import BACKEND_NAMES, BACKENDS, BackendName
from attn_doctor.diagnosis import (
    BackendStatus,
    Finding,
)

if TYPE_CHECKING:
    pass
from attn_doctor.plan.compat import TORCH_INTERNAL
from attn_doctor.plan.diagnose.context import _Ctx, _ev, _version_of
from attn_doctor.plan.machine import (
    parse_version,
)
from attn_doctor.plan.pip_command import pip_fix

# --- transformers -------------------------------------------------------------------------------


def _transformers_findings(ctx: _Ctx, statuses: dict[BackendName, BackendStatus]) -> list[Finding]:
    env, rules = ctx.env, ctx.rules
    out: list[Finding] = []
    tf = env.package("transformers")
    tfv = parse_version(tf.version) if tf else None
    if tf is not None and tfv is not None:
        for name in BACKEND_NAMES:
            status = statuses[name]
            if (
                status.installed != "yes"
                or status.compatible != "yes"
                or name in TORCH_INTERNAL - {"flex_attention"}
            ):
                continue
            entry = rules.attn_implementation(name)
            if entry is None or tfv >= Version(entry.first):
                continue
            out.append(
                ctx.finding(
                    "transformers-too-old-for-backend",
                    "warning",
                    f"transformers {tf.version} does not accept "
                    f'attn_implementation="{entry.value}"',
                    f'{BACKENDS[name].title} is installed, but attn_implementation="{entry.value}" '
                    f"exists from transformers {entry.first}: loading a model with it raises "
                    "ValueError.",
                    [
                        _ev("packages.transformers.version", tf.version),
                        _ev(f"index:transformers.toml#{entry.value}.first", entry.first),
                    ],
                    fix=pip_fix(env, "install", "-U", f"transformers>={entry.first}"),
                    backends=(name,),
                    sources=(entry.source,),
                )
            )
    if env.package("xformers") is not None:
        invalid = next(
            (i for i in rules.invalid_attn_implementations if i.value == "xformers"), None
        )
        if invalid is not None:
            out.append(
                ctx.finding(
                    "xformers-not-an-attn-implementation",
                    "info",
                    'attn_implementation="xformers" is not a transformers value',
                    "Guides suggest it, but transformers rejects it at model load: "
                    f"{invalid.error} (transformers {invalid.recorded_with}).",
                    [
                        _ev(
                            "packages.xformers.version",
                            _version_of(env, "xformers"),
                        ),
                        _ev("packages.transformers.version", tf.version if tf else None),
                    ],
                    fix_note=invalid.instead,
                    backends=("xformers",),
                    sources=(invalid.source,),
                )
            )
    if env.package("kernels") is not None:
        out.append(
            ctx.finding(
                "hub-kernels-need-network",
                "info",
                "Hub kernels download on first use",
                'attn_implementation="kernels-community/..." fetches the kernel from the Hugging '
                "Face Hub the first time; offline machines need it cached (or a kernels lockfile) "
                "first.",
                [
                    _ev(
                        "packages.kernels.version",
                        _version_of(env, "kernels"),
                    )
                ],
                backends=("hub_kernels",),
            )
        )
    return out


_FLASH_FOR_IMPL: dict[str, BackendName] = {
    info.attn_implementation: name
    for name, info in BACKENDS.items()
    if name.startswith("flash_attn_") and info.attn_implementation
}


def _hub_fallback_findings(ctx: _Ctx, table: dict[BackendName, BackendStatus]) -> list[Finding]:
    """What transformers really does here when asked for flash_attention_2/3/4 without the
    flash package: since 5.0 it loads the Hub kernel by itself if `kernels` is installed in
    its supported range (modeling_flash_attention_utils.py, FLASH_ATTN_KERNEL_FALLBACK)."""
    env, index = ctx.env, ctx.index
    tf = env.package("transformers")
    if index is None or tf is None or not env.nvidia_gpus:
        return []
    hub = index.hub
    tf_version = parse_version(tf.version)
    if tf_version is None or tf_version < Version(hub.transformers_fallback_since):
        return []
    kernels = env.package("kernels")
    kv = parse_version(kernels.version) if kernels is not None else None
    in_range = kv is not None and (
        Version(hub.kernels_min_version) <= kv < Version(hub.kernels_max_version)
    )
    out: list[Finding] = []
    for kernel in hub.kernels:
        backend = _FLASH_FOR_IMPL.get(kernel.replaces)
        if backend is None or table[backend].usable:
            continue  # the flash package itself serves this value
        sms = [g.sm for g in env.nvidia_gpus if g.sm is not None]
        if kernel.min_sm is not None and sms and max(sms) < kernel.min_sm:
            continue  # neither route runs on this GPU; the GPU findings say so
        evidence = [
            _ev("packages.transformers.version", tf.version),
            _ev("packages.kernels.version", kernels.version if kernels else None),
            _ev(f"index:hub_kernels.toml#{kernel.repo}", kernel.replaces),
        ]
        if in_range and kernels is not None:
            out.append(
                ctx.finding(
                    "transformers-hub-fallback",
                    "info",
                    f'attn_implementation="{kernel.replaces}" loads {kernel.repo} from the Hub',
                    f"{BACKENDS[backend].title} is not usable here, and transformers "
                    f"{tf.version} (>= {hub.transformers_fallback_since}) then falls back by "
                    f"itself to the Hub kernel {kernel.repo} because `kernels` {kernels.version} "
                    "is installed: it downloads on first use (network needed once).",
                    evidence,
                    fix_note="To pin what runs, install the flash package "
                    f"(attn-doctor install {BACKENDS[backend].distribution}) or load with "
                    f'attn_implementation="{kernel.repo}" explicitly.',
                    backends=(backend, "hub_kernels"),
                    sources=(hub.source,),
                )
            )
        elif kernels is not None:
            out.append(
                ctx.finding(
                    "transformers-hub-fallback-off",
                    "info",
                    f'no Hub fallback for attn_implementation="{kernel.replaces}"',
                    f"transformers {tf.version} falls back to {kernel.repo} only with `kernels` "
                    f">= {hub.kernels_min_version}, < {hub.kernels_max_version}; "
                    f"{kernels.version} is installed, so asking for {kernel.replaces} fails "
                    "at model load.",
                    evidence,
                    fix=pip_fix(
                        env,
                        "install",
                        f"kernels>={hub.kernels_min_version},<{hub.kernels_max_version}",
                    ),
                    backends=(backend, "hub_kernels"),
                    sources=(hub.source,),
                )
            )
    return out


def _unknown_findings(ctx: _Ctx) -> list[Finding]:
    out = []
    for unk in ctx.env.unknowns:
        if unk.field in ("driver.version", "driver.cuda_version") and not ctx.env.nvidia_gpus:
            continue
        out.append(
            ctx.finding(
                "unknown-fact",
                "info",
                f"Unknown: {unk.field}",
                f"{unk.field} could not be read: {unk.reason}. Rules that need it were skipped.",
                [_ev(unk.field, None)],
            )
        )
    return out
