"""Findings about transformers: attn_implementation values, versions, the Hub-kernel
fallback (pure).
"""

from __future__ import annotations

from packaging.version import Version

from attn_doctor.backends import BACKEND_NAMES, BACKENDS, BackendName
from attn_doctor.diagnose.context import Ctx, evidence_of, version_of
from attn_doctor.diagnosis import (
    BackendStatus,
    Finding,
)
from attn_doctor.planner.compat import TORCH_INTERNAL
from attn_doctor.planner.pip_command import pip_fix
from attn_doctor.versions import parse_version

# --- transformers -------------------------------------------------------------------------------

_ACCEPTED_PREFIXES = ("flash_attention_", "flex_attention", "sdpa")
"""Values transformers lists in ``AttentionInterface._global_mapping`` itself (others, such as
Hub ids or registered names, are not in that list even where they load)."""


def _accepted_values(ctx: Ctx) -> tuple[str, ...] | None:
    """The ``attn_implementation`` values read from the installed transformers' files, when
    the probe read them for the transformers version this snapshot records."""
    read = ctx.env.transformers_constants
    tf = ctx.env.package("transformers")
    if read is None or tf is None or read.version != tf.version or not read.attn_implementations:
        return None
    return read.attn_implementations


def transformers_findings(ctx: Ctx, statuses: dict[BackendName, BackendStatus]) -> list[Finding]:
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
            if entry is None:
                continue
            read = _accepted_values(ctx)
            if read is not None and entry.value.startswith(_ACCEPTED_PREFIXES):
                if entry.value in read:
                    continue  # the installed transformers lists it: it loads
            elif tfv >= Version(entry.first):
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
                        evidence_of("packages.transformers.version", tf.version),
                        evidence_of(f"index:transformers.toml#{entry.value}.first", entry.first),
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
                        evidence_of(
                            "packages.xformers.version",
                            version_of(env, "xformers"),
                        ),
                        evidence_of("packages.transformers.version", tf.version if tf else None),
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
                    evidence_of(
                        "packages.kernels.version",
                        version_of(env, "kernels"),
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


def hub_fallback_findings(ctx: Ctx, table: dict[BackendName, BackendStatus]) -> list[Finding]:
    """What transformers really does here when asked for flash_attention_2/3/4 without the
    flash package: since 5.0 it loads the Hub kernel by itself if `kernels` is installed in
    its supported range (modeling_flash_attention_utils.py, FLASH_ATTN_KERNEL_FALLBACK).

    The range and the repos are the installed transformers' own constants when the probe read
    them (``env.transformers_constants``), else the bundled row for that release
    (``index.hub_kernels.fallback_of``); a release with neither gets no verdict, only a note."""
    from attn_doctor.index.hub import fallback_of

    env, index = ctx.env, ctx.index
    tf = env.package("transformers")
    if index is None or tf is None or not env.nvidia_gpus:
        return []
    hub = index.hub
    tf_version = parse_version(tf.version)
    if tf_version is None or tf_version < Version(hub.transformers_fallback_since):
        return []
    rules = fallback_of(env, hub)
    kernels = env.package("kernels")
    accepted = rules.accepts(kernels.version) if kernels is not None else None
    min_sm = {k.repo: k.min_sm for k in hub.kernels}
    sms = [g.sm for g in env.nvidia_gpus if g.sm is not None]
    where = (
        "its installed files"
        if rules.read_here
        else ("the bundled table (unverified)" if not rules.verified else "the bundled table")
    )
    out: list[Finding] = []
    for implementation, repo in rules.repos:
        backend = _FLASH_FOR_IMPL.get(implementation)
        if backend is None or table[backend].usable:
            continue  # the flash package itself serves this value
        need = min_sm.get(repo)
        if need is not None and sms and max(sms) < need:
            continue  # neither route runs on this GPU; the GPU findings say so
        asked = rules.kernel_version(repo)
        named = f"{repo} (kernel version {asked})" if asked else repo
        evidence = [
            evidence_of("packages.transformers.version", tf.version),
            evidence_of("packages.kernels.version", kernels.version if kernels else None),
            evidence_of("transformers.kernels_range", rules.requirement),
            evidence_of(f"transformers.hub_fallback#{implementation}", repo),
        ]
        if kernels is None:
            continue
        if accepted is None:
            out.append(
                ctx.finding(
                    "transformers-hub-fallback-unknown",
                    "info",
                    f'Hub fallback for attn_implementation="{implementation}" not known',
                    f"transformers {tf.version} falls back to {repo} only with `kernels` in "
                    "the range it accepts; that range was not read for this release "
                    f"({rules.source}). Run `attn-doctor check` on the machine itself to "
                    "read it from the installed transformers.",
                    evidence,
                    backends=(backend, "hub_kernels"),
                    sources=(rules.source,),
                )
            )
        elif accepted:
            out.append(
                ctx.finding(
                    "transformers-hub-fallback",
                    "info",
                    f'attn_implementation="{implementation}" loads {repo} from the Hub',
                    f"{BACKENDS[backend].title} is not usable here, and transformers "
                    f"{tf.version} (>= {hub.transformers_fallback_since}) then falls back by "
                    f"itself to the Hub kernel {named} because `kernels` {kernels.version} "
                    f"is in the range it accepts ({rules.requirement}, from {where}): it "
                    "downloads on first use (network needed once).",
                    evidence,
                    fix_note="To pin what runs, install the flash package "
                    f"(attn-doctor install {BACKENDS[backend].distribution}) or load with "
                    f'attn_implementation="{repo}" explicitly.',
                    backends=(backend, "hub_kernels"),
                    sources=(rules.source,),
                )
            )
        else:
            out.append(
                ctx.finding(
                    "transformers-hub-fallback-off",
                    "info",
                    f'no Hub fallback for attn_implementation="{implementation}"',
                    f"transformers {tf.version} falls back to {repo} only with "
                    f"{rules.requirement} (from {where}); `kernels` {kernels.version} is "
                    f"installed, so asking for {implementation} fails at model load.",
                    evidence,
                    # accepted is False only where the range is known
                    fix=pip_fix(env, "install", rules.requirement or "kernels"),
                    backends=(backend, "hub_kernels"),
                    sources=(rules.source,),
                )
            )
    return out


def unknown_findings(ctx: Ctx) -> list[Finding]:
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
                [evidence_of(unk.field, None)],
            )
        )
    return out
