"""flash-attn-4's runtime: a complete nvidia-cutlass-dsl, in the plan, the download and check.

On an H200 (torch 2.11.0+cu130) flash-attn-4 4.0.0b36 failed with ``No module named
'cutlass.cute'``: nvidia-cutlass-dsl 4.8.1's libs-base and libs-cu12 were there, libs-core
(which ships ``cutlass/__init__.py`` and ``cutlass/cute/``) was not.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from attn_doctor.facts import Environment, HostFacts, PackageFacts, PythonFacts, TorchFacts
from attn_doctor.index import load_index
from attn_doctor.install.download import (
    download_for_snapshot,
    marker_environment,
    missing_runtime_parts,
    needed_requirements,
)
from attn_doctor.resolve import flash_attn_4_runtime

ROOT = Path(__file__).resolve().parent.parent
V = "4.8.1"
BASE = "nvidia-cutlass-dsl-libs-base"
CORE = "nvidia-cutlass-dsl-libs-core"
CU12 = "nvidia-cutlass-dsl-libs-cu12"
CU13 = "nvidia-cutlass-dsl-libs-cu13"
# nvidia-cutlass-dsl 4.8.1's Requires-Dist, as in its wheel's METADATA.
META_REQUIRES = [
    f"{BASE}=={V}",
    f"{CU12}=={V}",
    f'{CU13}=={V}; extra == "cu13"',
    f'nvidia-cutlass-dsl-libs-qnx-cu12=={V}; extra == "qnx"',
]


def _env(cuda: str) -> Environment:
    return Environment(
        host=HostFacts(os="linux", arch="x86_64", libc="glibc", libc_version="2.39"),
        python=PythonFacts(version="3.12.3", implementation="cpython", abi_tag="cp312"),
        torch=TorchFacts(version=f"2.11.0+cu{cuda.replace('.', '')}", build="cuda", cuda=cuda),
        packages=tuple(
            PackageFacts(name=n, version=v)
            for n, v in (
                ("einops", "0.8.1"),
                ("typing-extensions", "4.15.0"),
                ("apache-tvm-ffi", "0.1.12"),
                ("torch-c-dlpack-ext", "0.1.5"),
                ("quack-kernels", "0.5.3"),
                ("cuda-bindings", "13.0.3"),
                ("protobuf", "6.33.0"),
            )
        ),
    )


def _wheel(folder: Path, name: str, version: str, requires: list[str]) -> Path:
    dist = name.replace("-", "_")
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{dist}-{version}.dist-info/METADATA", "\n".join(meta) + "\n")
        zf.writestr(f"{dist}-{version}.dist-info/WHEEL", "Wheel-Version: 1.0\nTag: py3-none-any\n")
        zf.writestr(f"{dist}-{version}.dist-info/RECORD", "")
    return path


def test_the_index_names_every_part_for_cuda_12_and_13() -> None:
    index = load_index()
    cu12 = index.cutlass_dsl_distributions(V, 12)
    assert set(cu12) == {"nvidia-cutlass-dsl", BASE, CORE, CU12}
    assert index.cutlass_dsl_distributions(V, 13) == (*cu12, CU13)
    # Before 4.6.0 libs-base carried everything.
    assert index.cutlass_dsl_distributions("4.5.3", 12) == ("nvidia-cutlass-dsl", BASE)
    assert index.cutlass_dsl_distributions("4.2.0", 12) == ()


def test_the_plan_for_the_h200_names_the_whole_runtime() -> None:
    from attn_doctor.resolve import plan_backend
    from attn_doctor.snapshot import load_snapshot

    env = load_snapshot(ROOT / "tests" / "snapshots" / "h200-real.json")
    plan = plan_backend(env, load_index(), "flash_attn_4")
    (cand,) = plan.candidates
    assert cand.requirement.startswith("flash-attn-4[cu13]==")
    for part in (CORE, CU12, CU13):
        assert part in cand.reason
    newest = load_index().flash_attn_4[-1]
    assert flash_attn_4_runtime(newest.requires_dist, load_index(), 12)[-1] == CU12


def test_extras_carry_the_cuda_13_parts() -> None:
    markers = marker_environment(_env("13.0"))
    plain, _ = needed_requirements(META_REQUIRES, markers=markers, installed={})
    assert plain == [f"{BASE}=={V}", f"{CU12}=={V}"]
    cu13, _ = needed_requirements(META_REQUIRES, markers=markers, installed={}, extras=["cu13"])
    assert cu13 == [f"{BASE}=={V}", f"{CU12}=={V}", f"{CU13}=={V}"]
    top, _ = needed_requirements(
        load_index().flash_attn_4[-1].requires_dist, markers=markers, installed={}, extras=["cu13"]
    )
    assert "nvidia-cutlass-dsl[cu13]>=4.6.2" in top


def test_a_wheelhouse_without_libs_core_is_completed(tmp_path: Path) -> None:
    # The H200's set: the meta wheel, libs-base and libs-cu12; no libs-core.
    for name, requires in (("nvidia-cutlass-dsl", META_REQUIRES), (BASE, [f"{CORE}=={V}"]),
                           (CU12, [f"{BASE}=={V}"])):  # fmt: skip
        _wheel(tmp_path, name, V, requires)
    missing, _ = missing_runtime_parts(_env("13.0"), tmp_path, {})
    assert missing == [f"{CORE}=={V}", f"{CU13}=={V}"]
    missing, _ = missing_runtime_parts(_env("12.8"), tmp_path, {CORE: V})
    assert missing == []
    _wheel(tmp_path, CORE, V, [])
    assert missing_runtime_parts(_env("12.8"), tmp_path, {})[0] == []


@pytest.mark.functional
@pytest.mark.slow
def test_download_for_a_cuda_13_snapshot_fetches_the_whole_runtime(tmp_path: Path) -> None:
    """Real ``pip download`` from a local folder: flash-attn-4[cu13] and every part."""
    links = tmp_path / "links"
    links.mkdir()
    fa4 = load_index().flash_attn_4[-1]
    _wheel(links, "flash-attn-4", fa4.version, list(fa4.requires_dist))
    _wheel(links, "nvidia-cutlass-dsl", V, META_REQUIRES)
    _wheel(links, BASE, V, [f"{CORE}=={V}", "cuda-bindings>=12.8"])
    for name in (CORE, CU12, CU13):
        _wheel(links, name, V, [f"{BASE}=={V}"] if name != CORE else [])
    dest = tmp_path / "dest"
    report = download_for_snapshot(
        _env("13.0"),
        f"flash-attn-4[cu13]=={fa4.version}",
        dest,
        index_args=["--no-index", "--find-links", str(links)],
    )
    names = {f.split("-")[0] for f in report.files}
    assert names == {"flash_attn_4", "nvidia_cutlass_dsl", *(n.replace("-", "_") for n in
                     (BASE, CORE, CU12, CU13))}  # fmt: skip
    assert report.notes == ()  # following the metadata was already complete


def test_check_deep_explains_the_recorded_h200_failure_as_an_incomplete_install() -> None:
    import re
    from dataclasses import replace

    from attn_doctor.explain.engine import explain_imports
    from attn_doctor.facts import ImportResult
    from attn_doctor.snapshot import load_snapshot

    recorded = (ROOT / "docs" / "recorded" / "check-deep-with-flash-attn-4-h200.txt").read_text()
    m = re.search(r"`import flash_attn\.cute` error in a child process: (.+)", recorded)
    assert m is not None
    detail = m.group(1).strip()
    assert detail == "ModuleNotFoundError: No module named 'cutlass.cute'"
    h200 = load_snapshot(ROOT / "tests" / "snapshots" / "h200-real.json")
    packages = (
        PackageFacts(name="flash-attn-4", version="4.0.0b36"),
        PackageFacts(name="nvidia-cutlass-dsl", version=V),
        PackageFacts(name=BASE, version=V),
        PackageFacts(name=CU12, version=V),
    )
    env = replace(
        h200,
        packages=h200.packages + packages,
        imports=(ImportResult(module="flash_attn.cute", status="error", detail=detail),),
    )
    ((module, result),) = explain_imports(env)
    assert module == "flash_attn.cute"
    sid = "flash-attn-4-cutlass-dsl-incomplete"
    (exp,) = [e for e in result.explanations if e.match.symptom_id == sid]
    assert exp.confirmation.status == "confirmed"
    # the fix names the recorded machine's interpreter, not whatever pip is first on PATH
    python = env.python.executable
    assert python
    assert f"{python} -m pip install {CORE}=={V}" in [f.command for f in exp.fix]
    # With libs-core present the same message is not this cause.
    env_core = replace(env, packages=(*env.packages, PackageFacts(name=CORE, version=V)))
    ((_, again),) = explain_imports(env_core)
    (exp2,) = [e for e in again.explanations if e.match.symptom_id == sid]
    assert exp2.confirmation.status == "contradicted"
