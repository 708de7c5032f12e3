"""Each node's diagnosis and best backend. The fleet never ranks backends itself.

``best_recommendation`` is the ONE place the fleet asks "which backend, on this node": it
returns the diagnosis' first recommendation, which is the one decision
(``attn_doctor.decide``) that ``check``, ``install --auto`` and the runtime also follow,
so that ``fleet`` and ``check`` cannot disagree.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from attn_doctor.diagnosis import Diagnosis, Recommendation
from attn_doctor.facts import Environment

if TYPE_CHECKING:
    from attn_doctor.index import Index
    from attn_doctor.rules_data import Rules


def best_recommendation(diagnosis: Diagnosis) -> Recommendation | None:
    """The node's best backend: the diagnosis' first recommendation (None: nothing fits)."""
    return diagnosis.recommendations[0] if diagnosis.recommendations else None


def _identity_free(env: Environment) -> Environment:
    """``env`` without the facts that only name the machine (time, GPU UUIDs and bus ids).

    The planner never reads them, so nodes that differ only there share one diagnosis.
    """
    gpus = tuple(dataclasses.replace(g, uuid=None, pci_bus_id=None) for g in env.gpus)
    return dataclasses.replace(env, created_at="", gpus=gpus)


class Diagnoser:
    """Diagnoses nodes as ``attn-doctor check --snapshot`` would, once per distinct machine.

    The rules and the wheel index are loaded once for the whole fleet; a thousand copies of
    one machine are diagnosed once.
    """

    def __init__(self, rules: Rules | None = None, index: Index | None = None) -> None:
        self._rules = rules
        self._index = index
        self._cache: dict[Environment, Diagnosis] = {}

    def diagnose(self, env: Environment) -> Diagnosis:
        """The diagnosis ``check --snapshot`` gives for ``env`` (with the index on GPU boxes)."""
        key = _identity_free(env)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        from attn_doctor.diagnose import diagnose

        if self._rules is None:
            from attn_doctor.rules_data import load_rules

            self._rules = load_rules()
        index = None
        if env.gpus:  # as check does: say exactly which wheel fits on GPU machines
            if self._index is None:
                from attn_doctor.index import load_index

                self._index = load_index()
            index = self._index
        result = diagnose(env, self._rules, index=index)
        self._cache[key] = result
        return result
