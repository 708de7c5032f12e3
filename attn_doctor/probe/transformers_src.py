"""Constants of the installed transformers, read from its source files with ``ast``.

transformers decides which ``kernels`` versions its Hub fallback accepts, which Hub kernel
version it asks for, and which ``attn_implementation`` values it accepts. Those values change
between releases (5.23 accepted ``kernels>=0.18.2,<0.19.0``, 5.25 ``>=0.19.1,<0.20.0``), so a
bundled copy goes stale; the installed files are the truth. Importing transformers would
import torch, so the files are parsed instead: each constant's statement is cut out of the
text (a few lines) and parsed with ``ast``, never executed.

``parse_*`` are pure functions of a file's text; ``probe_transformers_constants`` reads the
files of an installed distribution. Neither raises: what cannot be read is an ``Unknown``.
"""

from __future__ import annotations

import ast
import importlib.metadata

from attn_doctor.facts import TransformersConstants, Unknown
from attn_doctor.probe.distributions import dist_file
from attn_doctor.probe.runner import read_text, unknown

IMPORT_UTILS = "transformers/utils/import_utils.py"
FLASH_UTILS = "transformers/modeling_flash_attention_utils.py"
MODELING_UTILS = "transformers/modeling_utils.py"
_FIELD = "transformers_constants"
_READ_LIMIT = 4 << 20
"""modeling_utils.py is about 280 kB in 5.25; a file far larger than that is not read whole."""


def statement_at(text: str, start: str) -> ast.stmt | None:
    """The top-level statement whose first line starts with ``start``, parsed alone.

    The statement runs from that line to the next line that begins in column 0 (a closing
    bracket excepted). Parsing a few lines instead of a 280 kB module keeps ``check`` fast.
    """
    at = 0 if text.startswith(start) else text.find("\n" + start) + 1
    if at == 0 and not text.startswith(start):
        return None
    lines: list[str] = []
    pos = at
    while pos >= 0:  # line by line from the statement on, never the whole file
        end = text.find("\n", pos)
        line = text[pos:] if end < 0 else text[pos:end]
        if lines and line and not line[0].isspace() and line[0] not in ")]}":
            break
        lines.append(line)
        pos = end + 1 if end >= 0 else -1
    try:
        module = ast.parse("\n".join(lines))
    except SyntaxError:
        return None
    return module.body[0] if module.body else None


def _assigned(stmt: ast.stmt | None) -> ast.expr | None:
    if isinstance(stmt, ast.Assign):
        return stmt.value
    if isinstance(stmt, ast.AnnAssign):
        return stmt.value
    return None


def _string(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def parse_kernels_range(text: str) -> tuple[str | None, str | None]:
    """``KERNELS_MIN_VERSION`` and ``KERNELS_MAX_VERSION`` from ``utils/import_utils.py``."""
    low = _string(_assigned(statement_at(text, "KERNELS_MIN_VERSION")))
    high = _string(_assigned(statement_at(text, "KERNELS_MAX_VERSION")))
    return low, high


def _dict_items(node: ast.expr | None) -> list[tuple[str, ast.expr]]:
    if not isinstance(node, ast.Dict):
        return []
    out = []
    for key, value in zip(node.keys, node.values, strict=True):
        name = _string(key)
        if name is not None:
            out.append((name, value))
    return out


def parse_hub_fallback(
    text: str,
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """``FLASH_ATTN_KERNEL_FALLBACK`` as (CUDA pairs, ROCm pairs).

    A value may be ``"repo-a" if is_rocm_platform() else "repo-b"``: ROCm takes the first
    branch, CUDA the second; a plain string holds for both.
    """
    cuda: list[tuple[str, str]] = []
    rocm: list[tuple[str, str]] = []
    for name, value in _dict_items(_assigned(statement_at(text, "FLASH_ATTN_KERNEL_FALLBACK"))):
        if isinstance(value, ast.IfExp) and "rocm" in ast.unparse(value.test):
            on_rocm, elsewhere = _string(value.body), _string(value.orelse)
        else:
            on_rocm = elsewhere = _string(value)
        if elsewhere is not None:
            cuda.append((name, elsewhere))
        if on_rocm is not None:
            rocm.append((name, on_rocm))
    return tuple(cuda), tuple(rocm)


def parse_kernel_versions(text: str) -> tuple[tuple[str, str], ...]:
    """``FLASH_ATTN_KERNEL_VERSIONS``: (repo, version) with the version as written (``4``, or
    an expression such as ``4 if is_torch_greater_or_equal("2.10") else 3``)."""
    out = []
    for name, value in _dict_items(_assigned(statement_at(text, "FLASH_ATTN_KERNEL_VERSIONS"))):
        if isinstance(value, ast.Constant) and isinstance(value.value, int | str):
            out.append((name, str(value.value)))
        else:
            out.append((name, ast.unparse(value)))
    return tuple(out)


def parse_flash_attn_2_min_version(text: str) -> str | None:
    """The version ``is_flash_attn_2_available`` compares flash-attn's against with ``>=``
    (``version.parse(flash_attn_version) >= version.parse("2.3.3")``), or None."""
    # Decorated with @lru_cache: the statement is cut from its ``def`` line (the decorators
    # above it do not matter here).
    func = statement_at(text, "def is_flash_attn_2_available")
    if not isinstance(func, ast.FunctionDef):
        return None
    for node in ast.walk(func):
        if (
            isinstance(node, ast.Compare)
            and len(node.ops) == 1
            and isinstance(node.ops[0], ast.GtE)
            and isinstance(node.comparators[0], ast.Call)
            and node.comparators[0].args
        ):
            found = _string(node.comparators[0].args[0])
            if found is not None:
                return found
    return None


def parse_attn_implementations(text: str) -> tuple[str, ...]:
    """``eager`` plus the keys of ``AttentionInterface._global_mapping`` (``modeling_utils.py``):
    the values ``from_pretrained`` accepts without a registration."""
    cls = statement_at(text, "class AttentionInterface")
    if not isinstance(cls, ast.ClassDef):
        return ()
    for stmt in cls.body:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == "_global_mapping" for t in targets):
            keys = [name for name, _ in _dict_items(_assigned(stmt))]
            return ("eager", *(k for k in keys if k != "eager")) if keys else ()
    return ()


def probe_transformers_constants(
    dists: dict[str, importlib.metadata.Distribution],
) -> tuple[TransformersConstants | None, list[Unknown]]:
    """The constants of the installed transformers, or None when it is not installed."""
    dist = dists.get("transformers")
    if dist is None:
        return None, []
    unknowns: list[Unknown] = []
    texts: dict[str, str] = {}
    for relpath in (IMPORT_UTILS, FLASH_UTILS, MODELING_UTILS):
        path = dist_file(dist, relpath)
        text = read_text(path, limit=_READ_LIMIT) if path is not None else None
        if text is None:
            unknowns.append(unknown(_FIELD, f"{relpath} is missing or unreadable"))
        else:
            texts[relpath] = text
    low, high = parse_kernels_range(texts.get(IMPORT_UTILS, ""))
    if IMPORT_UTILS in texts and (low is None or high is None):
        unknowns.append(
            unknown(
                f"{_FIELD}.kernels_min_version",
                f"KERNELS_MIN_VERSION/KERNELS_MAX_VERSION not found in {IMPORT_UTILS}",
            )
        )
    fallback, fallback_rocm = parse_hub_fallback(texts.get(FLASH_UTILS, ""))
    versions = parse_kernel_versions(texts.get(FLASH_UTILS, ""))
    if FLASH_UTILS in texts and not fallback:
        # 5.0-5.3 kept the table in modeling_utils.py.
        fallback, fallback_rocm = parse_hub_fallback(texts.get(MODELING_UTILS, ""))
    values = parse_attn_implementations(texts.get(MODELING_UTILS, ""))
    fa2_min = parse_flash_attn_2_min_version(texts.get(IMPORT_UTILS, ""))
    if MODELING_UTILS in texts and not values:
        unknowns.append(
            unknown(
                f"{_FIELD}.attn_implementations",
                f"AttentionInterface._global_mapping not found in {MODELING_UTILS}",
            )
        )
    return (
        TransformersConstants(
            version=dist.version,
            kernels_min_version=low,
            kernels_max_version=high,
            hub_fallback=fallback,
            hub_fallback_rocm=fallback_rocm,
            hub_kernel_versions=versions,
            attn_implementations=values,
            flash_attn_2_min_version=fa2_min,
            sources=tuple(sorted(texts)),
        ),
        unknowns,
    )
