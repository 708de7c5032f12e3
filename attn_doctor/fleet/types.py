"""The types of ``attn-doctor fleet``: one node read in, and the fleet report out.

``NodeInput`` is what a reader (files, stdin, Ray) hands over for one node; ``FleetReport`` is
the ``result`` of ``attn-doctor fleet --json`` (its schema is generated from these classes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from attn_doctor.diagnosis import Diagnosis, Severity
from attn_doctor.facts import Environment

NodeState = Literal["ready", "not-ready", "failed"]
"""``ready``: no error-level finding and the best backend works as installed;
``not-ready``: the node's facts were read but it is not ready; ``failed``: no facts at all
(the node's ``check`` crashed, hung or printed no JSON)."""


@dataclass(frozen=True, kw_only=True)
class NodeInput:
    """One node as read: its facts (and the diagnosis its own ``check --json`` recorded), or
    why there are none."""

    name: str
    """Node name: the file name without ``.json``, the Ray node's host name, ``stdin:LINE``."""
    source: str
    """Where it was read: a file path, ``FILE:LINE``, ``stdin:LINE`` or ``ray:NODE_ID``."""
    environment: Environment | None = None
    diagnosis: Diagnosis | None = None
    """The diagnosis recorded by ``check --json`` on the node itself (it may rest on that
    node's bench measurements); None for a bare snapshot, which is diagnosed here."""
    failure: str | None = None
    """Why there are no facts (only for nodes that a gatherer could not check)."""


@dataclass(frozen=True, kw_only=True)
class Fact:
    """One fact that decides attention backends, as a short text."""

    name: str
    """``driver``, ``gpus``, ``torch``, ``torch C++ ABI``, ``glibc``, ``python``, a package's
    distribution name, or ``import <module>``."""
    value: str


@dataclass(frozen=True, kw_only=True)
class FactDifference:
    """A fact where an outlier differs from the reference group."""

    name: str
    value: str
    """The outlier's value."""
    reference: str
    """The reference group's value."""


@dataclass(frozen=True, kw_only=True)
class FindingSummary:
    """A diagnosis finding, short."""

    id: str
    severity: Severity
    title: str
    fix: str | None = None


@dataclass(frozen=True, kw_only=True)
class FleetGroup:
    """Nodes with the same deciding facts and the same verdict."""

    id: int
    """1 for the reference group (the largest), then by size."""
    nodes: tuple[str, ...]
    state: NodeState
    best_backend: str | None
    """The node's best backend (its diagnosis' first recommendation)."""
    attn_implementation: str | None
    facts: tuple[Fact, ...]
    problems: tuple[FindingSummary, ...] = ()
    """Error and warning findings of this group's diagnosis."""


@dataclass(frozen=True, kw_only=True)
class Outlier:
    """A node outside the reference group, and what makes it differ."""

    node: str
    group: int
    state: NodeState
    best_backend: str | None
    differences: tuple[FactDifference, ...]
    """Deciding facts that differ from the reference group (empty: same facts, other verdict)."""
    findings: tuple[FindingSummary, ...]
    """Error and warning findings this node has and the reference group has not."""


@dataclass(frozen=True, kw_only=True)
class NodeFailure:
    """A node that could not be checked."""

    node: str
    source: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class UnreadableInput:
    """An input that holds no node: a file, a line of one (``FILE:LINE``) or ``stdin`` that
    is not a snapshot or a ``check --json`` document."""

    source: str
    error: str
    """What is wrong with it: ``truncated: …``, ``not valid JSON: …``, ``empty, …``."""


@dataclass(frozen=True, kw_only=True)
class FleetReport:
    """The ``result`` of ``attn-doctor fleet --json``."""

    nodes: int
    """Nodes read, failed ones included."""
    ready: int
    failed: int
    same_best_backend: bool
    """Every node was checked and they all have the same best backend."""
    verdict: str
    """One line: the answer to "is every node ready, and the same?"."""
    groups: tuple[FleetGroup, ...]
    outliers: tuple[Outlier, ...]
    failures: tuple[NodeFailure, ...] = ()
    unreadable: tuple[UnreadableInput, ...] = ()
    """Inputs that could not be read; every other input is in the report (exit code 6)."""

    @property
    def all_ready_and_same(self) -> bool:
        """Exit 0: every node ready, with the same best backend."""
        return self.nodes > 0 and self.ready == self.nodes and self.same_best_backend
