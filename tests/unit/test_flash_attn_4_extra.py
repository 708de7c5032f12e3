"""check names flash-attn-4's CUDA-major extra when its CuTe DSL runtime pieces are missing."""

from __future__ import annotations

from attn_doctor.diagnose import diagnose
from attn_doctor.index import load_index
from attn_doctor.rules_data import load_rules
from tests.index_envs import make_env

BASE = (("triton", "3.6.0"), ("flash-attn-4", "4.0.0b36"))
DSL_CU12 = (
    ("nvidia-cutlass-dsl", "4.8.1"),
    ("nvidia-cutlass-dsl-libs-base", "4.8.1"),
    ("nvidia-cutlass-dsl-libs-core", "4.8.1"),
    ("nvidia-cutlass-dsl-libs-cu12", "4.8.1"),
)


def _found(torch: str, cuda: str, packages: tuple[tuple[str, str], ...]) -> list[str]:
    env = make_env(torch=torch, torch_cuda=cuda, packages=packages)
    diag = diagnose(env, load_rules(), index=load_index())
    return [f.fix or "" for f in diag.findings if f.id == "flash-attn-4-missing-cuda-extra"]


def test_cuda_13_without_the_cu13_libs_names_the_extra() -> None:
    (fix,) = _found("2.11.0+cu130", "13.0", BASE + DSL_CU12)
    assert fix.endswith('"flash-attn-4[cu13]==4.0.0b36"')


def test_cuda_12_with_everything_is_quiet() -> None:
    assert _found("2.11.0+cu128", "12.8", BASE + DSL_CU12) == []


def test_cuda_13_with_the_cu13_libs_is_quiet() -> None:
    cu13 = (("nvidia-cutlass-dsl-libs-cu13", "4.8.1"),)
    assert _found("2.11.0+cu130", "13.0", BASE + DSL_CU12 + cu13) == []


def test_no_runtime_at_all_names_the_runtime() -> None:
    (fix,) = _found("2.11.0+cu128", "12.8", BASE)
    assert fix.endswith('"flash-attn-4==4.0.0b36"')
