"""flash-attn built from source because the release asked for has no wheel for this torch:
the answer reads each release's build matrix in wheels_index/flash_attn.toml."""

from __future__ import annotations

import re

from attn_doctor.explain.answer import ClassAnswer, body_of, line_of, mm
from attn_doctor.explain.evidence import TextFacts
from attn_doctor.explain.knowledge import Knowledge

_FA_SOURCE_BUILD = re.compile(
    r"Building wheels? for (?:collected packages:[^\n]*)?\bflash[-_]attn\b"
    r"|Precompiled wheel not found|Guessing wheel URL"
    r"|(?:Could not build wheels|Failed to build)(?: for)? flash[-_]attn\b"
    r"|Running setup\.py install for flash[-_]attn",
    re.I,
)
"""pip or flash-attn's setup.py building flash-attn from its source archive."""


def _mm_key(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", v)[:2])


def flash_attn_release_without_torch_wheel(f: TextFacts, _know: Knowledge) -> list[ClassAnswer]:
    """flash-attn built from source because the release asked for publishes no wheel for this
    torch: its release matrix (wheels_index/flash_attn.toml) names the torch releases it was
    built for, and the first release with a wheel for this torch is the fix."""
    body = body_of(f)
    torch = f.version("torch")
    if not torch or not _FA_SOURCE_BUILD.search(body):
        return []
    from packaging.version import InvalidVersion, Version

    from attn_doctor.index import load_index

    releases = load_index().flash_attn
    want = _mm_key(torch)
    covers = [r for r in releases if any(_mm_key(t) == want for t in r.torch)]
    fa = f.version("flash-attn")
    if fa:
        release = next((r for r in releases if r.version == fa.split("+")[0]), None)
        if release is None or release in covers:
            return []  # an unknown release, or one with a wheel for this torch: another cause
        built = sorted({".".join(map(str, _mm_key(t))) for t in release.torch}, key=_mm_key)
        said = (
            f"flash-attn {release.version} publishes wheels for torch {', '.join(built)} "
            f"(its release build matrix), not torch {mm(torch)}"
        )
    elif covers:
        return []  # which release pip took is not in the message: the general answer says it
    else:
        said = f"no flash-attn release in the index publishes a wheel for torch {mm(torch)}"
    later = []
    for r in covers:
        try:
            if not fa or Version(r.version) > Version(fa.split("+")[0]):
                later.append(r)
        except InvalidVersion:
            continue
    first = min(later, key=lambda r: Version(r.version), default=None)
    fix = (
        (
            f"pip install 'flash-attn=={first.version}' --no-build-isolation   # the first "
            f"release with torch {mm(torch)} wheels (attn-doctor install flash-attn picks the "
            "wheel for this machine)",
        )
        if first is not None
        else (
            "keep a torch release that flash-attn publishes wheels for, or build from source: "
            "MAX_JOBS=4 pip install flash-attn --no-build-isolation (an hour or more, needs nvcc)",
        )
    )
    return [
        ClassAnswer(
            class_id="flash-attn-no-prebuilt-wheel",
            title=f"no prebuilt flash-attn wheel for torch {mm(torch)}: pip builds from source",
            cause=(
                f"{said}: flash-attn's setup.py looks for a release wheel named after torch's "
                "major.minor, finds none, and compiles from source (an hour or more, needs nvcc "
                "and lots of RAM; it looks stuck at 'Building wheel')."
            ),
            fix=fix,
            evidence=(
                ("torch", torch),
                *((("flash-attn", fa),) if fa else ()),
                *((("first release with a wheel", first.version),) if first else ()),
            ),
            source=(
                "wheels_index/flash_attn.toml (each release's build matrix, read from "
                "Dao-AILab/flash-attention .github/workflows/publish.yml at its tag)"
            ),
            line=line_of(f, _FA_SOURCE_BUILD.pattern),
        )
    ]
