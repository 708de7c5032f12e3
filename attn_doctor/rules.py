"""The backend rules data (``wheels_index/*.toml``), loaded and validated once."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Rules:
    """Validated rules: driver table, backend requirements, transformers support."""


def load_rules() -> Rules:
    raise NotImplementedError("rules data: being written")
