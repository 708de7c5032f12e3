"""The result document of ``attn-doctor check --json`` (its schema is generated from it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from attn_doctor.diagnosis import Diagnosis
from attn_doctor.facts import Environment

if TYPE_CHECKING:
    # Imported only where explanations exist (a failed --deep import) and by the schema
    # generator: the knowledge base is not on `check`'s start-up path.
    from attn_doctor.explain.engine import ExplainResult
    from attn_doctor.verify.runner import VerifyReport


@dataclass(frozen=True, kw_only=True)
class ImportExplanation:
    """A failed ``--deep`` import and what the knowledge base says about it here."""

    module: str
    explanation: ExplainResult


@dataclass(frozen=True, kw_only=True)
class CheckReport:
    """The ``result`` of ``attn-doctor check --json``."""

    environment: Environment
    diagnosis: Diagnosis
    import_explanations: tuple[ImportExplanation, ...] = ()
    verification: VerifyReport | None = None
    """``check --verify``: the kernel and model checks of every backend check calls usable."""
    knowledge: str | None = None
    """Where the wheel knowledge planning used came from and how old it is (the bundled data,
    or an ``attn-doctor index update`` overlay with its date); None for a ``--snapshot``."""
