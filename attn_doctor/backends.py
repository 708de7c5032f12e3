"""The closed set of attention backends attn-doctor knows, and how people name them.

Everything else about a backend (its title, distributions, modules, transformers value, what
it needs, how it is verified and installed) is its record in ``wheels_index/backends.toml``,
read once by ``attn_doctor.rules.load_backend_records``; ``BACKENDS`` is that record set.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    from attn_doctor.rules import BackendRule

BackendName = Literal[
    "flash_attn_2",
    "flash_attn_3",
    "flash_attn_4",
    "xformers",
    "sageattention",
    "unsloth",
    "sdpa",
    "sdpa_flash",
    "sdpa_mem_efficient",
    "sdpa_cudnn",
    "sdpa_math",
    "sdpa_cpu_fused",
    "flex_attention",
    "hub_kernels",
    "eager",
]

BACKEND_NAMES: tuple[BackendName, ...] = get_args(BackendName)


class _Records(Mapping[BackendName, "BackendRule"]):
    """``BACKENDS[name]``: the backend's record, loaded from the data on first use."""

    def _load(self) -> dict[BackendName, BackendRule]:
        from attn_doctor.rules import load_backend_records

        return {r.name: r for r in load_backend_records()}

    def __getitem__(self, name: BackendName) -> BackendRule:
        return self._load()[name]

    def __iter__(self) -> Iterator[BackendName]:
        return iter(BACKEND_NAMES)

    def __len__(self) -> int:
        return len(BACKEND_NAMES)


BACKENDS: Mapping[BackendName, BackendRule] = _Records()
"""Every backend's record, by name, in ``BACKEND_NAMES`` order."""


def backend_aliases() -> dict[str, BackendName]:
    """Every name a user may type (normalised: lower case, ``-`` as ``_``) -> backend."""
    out: dict[str, BackendName] = {}
    for name in BACKEND_NAMES:
        for alias in (name, *BACKENDS[name].aliases):
            out[alias.lower().replace("-", "_")] = name
    return out


def parse_backend(text: str) -> BackendName:
    """Map a user's backend name (``flash-attn``, ``fa2``, ``xformers``…) to a ``BackendName``.

    Raises ``UsageError`` listing the known names and their aliases.
    """
    from attn_doctor.errors import UsageError

    key = text.strip().lower().replace("-", "_")
    aliases = backend_aliases()
    if key in aliases:
        return aliases[key]
    raise UsageError(
        f"unknown backend {text!r}",
        hint="known backends: "
        + "; ".join(
            name + (f" ({', '.join(BACKENDS[name].aliases)})" if BACKENDS[name].aliases else "")
            for name in BACKEND_NAMES
        ),
    )
