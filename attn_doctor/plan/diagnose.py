"""The diagnosis: a pure function of (Environment, Rules)."""

from __future__ import annotations

from attn_doctor.diagnosis import Diagnosis
from attn_doctor.facts import Environment
from attn_doctor.rules import Rules


def diagnose(env: Environment, rules: Rules) -> Diagnosis:
    raise NotImplementedError("diagnosis: being written")
