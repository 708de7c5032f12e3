"""transformers' own constants beat a bundled copy: the kernels range of its Hub fallback,
the kernel versions it asks for, and the attn_implementation values it accepts."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json

import pytest

from attn_doctor.diagnose import diagnose
from attn_doctor.facts import Environment, PackageFacts, TransformersConstants
from attn_doctor.index import load_index
from attn_doctor.index.hub import fallback_for
from attn_doctor.probe.transformers_src import (
    parse_attn_implementations,
    parse_flash_attn_2_min_version,
    parse_hub_fallback,
    parse_kernel_versions,
    parse_kernels_range,
    probe_transformers_constants,
)
from attn_doctor.resolve import plan_backend
from attn_doctor.rules_data import load_rules
from tests.conftest import SNAPSHOTS

# Shaped like transformers 5.23's files (the version table's first entry is an expression).
IMPORT_UTILS_523 = """
TRITON_MIN_VERSION = "1.0.0"
KERNELS_MIN_VERSION = "0.18.2"
KERNELS_MAX_VERSION = "0.19.0"


@lru_cache
def is_torch_available() -> bool:
    return True


@lru_cache
@_make_compile_constant
def is_flash_attn_2_available(kernels_fallback_ok: bool = False) -> bool:
    is_available, flash_attn_version = _is_package_available("flash_attn", return_version=True)
    if is_available and is_torch_cuda_available():
        return version.parse(flash_attn_version) >= version.parse("2.3.3")
    return kernels_fallback_ok
"""
FLASH_UTILS = """
FLASH_ATTN_KERNEL_FALLBACK = {
    "flash_attention_2": (
        "kernels-community/aiter-flash-attn" if is_rocm_platform()
        else "kernels-community/flash-attn2"
    ),
    "flash_attention_4": "kernels-community/flash-attn4",
}

FLASH_ATTN_KERNEL_VERSIONS = {
    "kernels-community/flash-attn2": 4 if is_torch_greater_or_equal("2.10") else 3,
    "kernels-community/flash-attn4": 0,
}
# a comment at column 0 ends the statement
"""
MODELING_UTILS = '''
class AttentionInterface(GeneralInterface):
    """Doc."""

    _global_mapping = {
        "flash_attention_2": flash_attention_forward,
        "sdpa": sdpa_attention_forward,
        "paged|eager": eager_paged_attention_forward,
    }

    def get_interface(self, name):
        return None


ALL_ATTENTION_FUNCTIONS = AttentionInterface()
'''


def test_parsers_read_the_statements_without_running_them() -> None:
    assert parse_kernels_range(IMPORT_UTILS_523) == ("0.18.2", "0.19.0")
    assert parse_flash_attn_2_min_version(IMPORT_UTILS_523) == "2.3.3"
    assert parse_flash_attn_2_min_version("def other():\n    pass\n") is None
    cuda, rocm = parse_hub_fallback(FLASH_UTILS)
    assert cuda == (
        ("flash_attention_2", "kernels-community/flash-attn2"),
        ("flash_attention_4", "kernels-community/flash-attn4"),
    )
    assert rocm[0] == ("flash_attention_2", "kernels-community/aiter-flash-attn")
    versions = dict(parse_kernel_versions(FLASH_UTILS))
    assert versions["kernels-community/flash-attn4"] == "0"
    assert "else 3" in versions["kernels-community/flash-attn2"]
    assert parse_attn_implementations(MODELING_UTILS) == (
        "eager",
        "flash_attention_2",
        "sdpa",
        "paged|eager",
    )
    assert parse_kernels_range("x = 1\n") == (None, None)
    assert parse_attn_implementations("class AttentionInterface(:\n") == ()


def test_the_installed_transformers_is_read_from_its_files() -> None:
    try:
        dist = importlib.metadata.distribution("transformers")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("transformers is not installed")
    constants, unknowns = probe_transformers_constants({"transformers": dist})
    assert constants is not None
    assert not unknowns
    assert constants.version == dist.version
    assert constants.kernels_min_version
    assert constants.kernels_max_version
    assert {"eager", "sdpa", "flash_attention_2"} <= set(constants.attn_implementations)
    assert dict(constants.hub_fallback)["flash_attention_2"] == "kernels-community/flash-attn2"
    if dist.version == "5.25.0":  # what the venv this was written in holds
        assert (constants.kernels_min_version, constants.kernels_max_version) == (
            "0.19.1",
            "0.20.0",
        )
        assert dict(constants.hub_kernel_versions)["kernels-community/flash-attn2"] == "4"
        assert constants.flash_attn_2_min_version == "2.3.3"
    assert probe_transformers_constants({}) == (None, [])


def test_the_bundled_row_equals_what_the_reader_finds_in_the_installed_transformers() -> None:
    """The bundled rows were read from the package-index wheels with this reader; the installed
    release's row must say what the reader says about the installed files."""
    try:
        dist = importlib.metadata.distribution("transformers")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("transformers is not installed")
    hub = load_index().hub
    row = hub.row_for(dist.version)
    if row is None:
        pytest.skip(f"no bundled row for transformers {dist.version}")
    constants, _ = probe_transformers_constants({"transformers": dist})
    assert constants is not None
    assert row.verified
    assert (row.kernels_min_version, row.kernels_max_version) == (
        constants.kernels_min_version,
        constants.kernels_max_version,
    )
    assert dict(row.kernel_versions) == dict(constants.hub_kernel_versions)
    assert {(k.replaces, k.repo) for k in hub.kernels} == set(constants.hub_fallback)


def test_the_bundled_table_has_a_sourced_row_per_release() -> None:
    hub = load_index().hub
    rows = {r.version: r for r in hub.rows}
    assert {"5.20", "5.21", "5.22", "5.23", "5.24", "5.25"} <= set(rows)
    assert all(rows[v].verified for v in ("5.20", "5.21", "5.22", "5.23", "5.24", "5.25"))
    assert all(r.source for r in rows.values())
    assert (rows["5.25"].kernels_min_version, rows["5.25"].kernels_max_version) == (
        "0.19.1",
        "0.20.0",
    )
    assert rows["5.25"].verified
    assert (rows["5.23"].kernels_min_version, rows["5.23"].kernels_max_version) == (
        "0.18.2",
        "0.19.0",
    )
    assert (rows["5.22"].kernels_min_version, rows["5.22"].kernels_max_version) == (
        "0.17.2",
        "0.18.0",
    )
    assert hub.row_for("5.25.0") is rows["5.25"]
    assert hub.row_for("5.2.0") is None


def _h200(
    transformers: str, kernels: str, constants: TransformersConstants | None = None
) -> Environment:
    env = Environment.from_json((SNAPSHOTS / "h200-real.json").read_text())
    packages = [p for p in env.packages if p.name not in ("transformers", "kernels")]
    packages += [
        PackageFacts(name="transformers", version=transformers),
        PackageFacts(name="kernels", version=kernels),
    ]
    return dataclasses.replace(
        env,
        packages=tuple(sorted(packages, key=lambda p: p.name)),
        transformers_constants=constants,
    )


def _ids(env: Environment) -> set[str]:
    return {f.id for f in diagnose(env, load_rules(), index=load_index()).findings}


def test_h200_with_transformers_5_25_and_kernels_0_19_1_keeps_the_fallback() -> None:
    """The acceptance case: no "fallback off", no kernels downgrade anywhere."""
    env = _h200("5.25.0", "0.19.1")
    diagnosis = diagnose(env, load_rules(), index=load_index())
    ids = {f.id for f in diagnosis.findings}
    assert "transformers-hub-fallback" in ids
    assert "transformers-hub-fallback-off" not in ids
    text = json.dumps(dataclasses.asdict(diagnosis))
    assert "0.18.2" not in text
    assert "<0.19.0" not in text
    plan = plan_backend(env, load_index(), "hub_kernels")
    assert plan.candidates
    assert plan.candidates[0].requirement == "kernels>=0.19.1,<0.20.0"


def test_h200_with_transformers_5_23_and_kernels_0_19_1_has_no_fallback() -> None:
    env = _h200("5.23.0", "0.19.1")
    off = [f for f in diagnose(env, load_rules(), index=load_index()).findings
           if f.id == "transformers-hub-fallback-off"]  # fmt: skip
    assert off
    assert off[0].fix == "/opt/venv/bin/python3 -m pip install 'kernels>=0.18.2,<0.19.0'"


def test_constants_read_on_the_machine_beat_the_table() -> None:
    read = TransformersConstants(
        version="5.30.0",
        kernels_min_version="0.21.0",
        kernels_max_version="0.22.0",
        hub_fallback=(("flash_attention_2", "kernels-community/flash-attn2"),),
        sources=("transformers/utils/import_utils.py",),
    )
    assert "transformers-hub-fallback-unknown" in _ids(_h200("5.30.0", "0.21.3"))
    ids = _ids(_h200("5.30.0", "0.21.3", read))
    assert "transformers-hub-fallback" in ids
    assert not {"transformers-hub-fallback-off", "transformers-hub-fallback-unknown"} & ids
    rules = fallback_for(load_index().hub, transformers="5.30.0", read=read)
    assert rules.read_here
    assert rules.requirement == "kernels>=0.21.0,<0.22.0"
    # Constants of another transformers version (a stale snapshot field) are not used.
    stale = fallback_for(load_index().hub, transformers="5.25.0", read=read)
    assert not stale.read_here
    assert stale.requirement == "kernels>=0.19.1,<0.20.0"


def test_snapshots_round_trip_the_constants() -> None:
    read = TransformersConstants(version="5.25.0", attn_implementations=("eager", "sdpa"))
    env = _h200("5.25.0", "0.19.1", read)
    assert Environment.from_json(env.to_json()).transformers_constants == read
