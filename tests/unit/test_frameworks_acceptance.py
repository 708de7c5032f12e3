"""Issue 21's acceptance: the real H200 snapshot with a framework added speaks its knob."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from attn_doctor.cli import cli
from attn_doctor.diagnose import diagnose
from attn_doctor.diagnosis import Diagnosis
from attn_doctor.facts import Environment, PackageFacts
from attn_doctor.index import load_index
from attn_doctor.resolve import plan_backend, plan_install
from attn_doctor.rules_data import load_rules
from tests.conftest import REPO_ROOT, SNAPSHOTS

H200 = SNAPSHOTS / "h200-real.json"
CHECK_SCHEMA = json.loads((REPO_ROOT / "attn_doctor/schemas/check.schema.json").read_text())

VLLM = PackageFacts(
    name="vllm",
    version="0.34.0",
    requires=("torch==2.14.0", "flashinfer-python==0.7.3", "transformers<5.23.0,>=5.16.1"),
)
SGLANG = PackageFacts(name="sglang", version="0.5.23")  # no metadata: the data's pins apply
DIFFUSERS = PackageFacts(name="diffusers", version="0.42.1", requires=("numpy", "Pillow"))


def h200_with(
    *packages: PackageFacts, env_vars: tuple[tuple[str, str], ...] = (), **changes: object
) -> Environment:
    env = Environment.from_json(H200.read_text())
    names = {p.name for p in packages}
    kept = [p for p in env.packages if p.name not in names]
    return dataclasses.replace(
        env,
        packages=tuple(sorted([*kept, *packages], key=lambda p: p.name)),
        env_vars=tuple(sorted((*env.env_vars, *env_vars))),
        **changes,  # type: ignore[arg-type]
    )


def check_json(env: Environment, tmp_path: Path, *args: str) -> dict[str, Any]:
    snap = tmp_path / "snap.json"
    snap.write_text(env.to_json())
    result = CliRunner().invoke(cli, ["check", "--snapshot", str(snap), "--json", *args])
    doc = json.loads(result.output)
    jsonschema.validate(doc, CHECK_SCHEMA)
    return doc


def advice(doc: dict[str, Any], framework: str) -> dict[str, Any]:
    result = doc["result"]
    assert isinstance(result, dict)
    found = [a for a in result["diagnosis"]["frameworks"] if a["framework"] == framework]
    assert found, f"no {framework} knob in {result['diagnosis']['frameworks']}"
    return found[0]


def finding_ids(doc: dict[str, Any]) -> set[str]:
    result = doc["result"]
    assert isinstance(result, dict)
    return {f["id"] for f in result["diagnosis"]["findings"]}


def test_vllm_with_the_unread_variable(tmp_path: Path) -> None:
    env = h200_with(VLLM, env_vars=(("VLLM_ATTENTION_BACKEND", "FLASHINFER"),))
    doc = check_json(env, tmp_path)
    knob = advice(doc, "vllm")
    assert "vllm serve MODEL --attention-backend FLASH_ATTN" in knob["knob"]
    assert "--attention-config.flash_attn_version 3" in knob["knob"]  # Hopper: FA3
    assert knob["status"] == "ready"  # vLLM ships vllm_flash_attn: no flash-attn install
    assert "framework-setting-not-read" in finding_ids(doc)
    result = doc["result"]
    assert isinstance(result, dict)
    unread = next(
        f for f in result["diagnosis"]["findings"] if f["id"] == "framework-setting-not-read"
    )
    assert "--attention-backend FLASHINFER" in unread["fix"]


def test_sglang_names_an_sglang_choice(tmp_path: Path) -> None:
    doc = check_json(h200_with(SGLANG), tmp_path)
    knob = advice(doc, "sglang")
    assert knob["knob"] == (
        "python -m sglang.launch_server --model-path MODEL --attention-backend fa3"
    )
    assert knob["name"] in ("fa3", "fa4", "flashinfer", "triton", "torch_native", "flex_attention")


def test_diffusers_names_the_set_attention_backend_value(tmp_path: Path) -> None:
    doc = check_json(h200_with(DIFFUSERS), tmp_path)
    knob = advice(doc, "diffusers")
    assert knob["knob"] == 'pipe.transformer.set_attention_backend("native")'
    assert "cuDNN" in knob["reason"]  # what native runs on this H200


def test_for_asks_a_framework_that_is_not_installed(tmp_path: Path) -> None:
    doc = check_json(h200_with(), tmp_path, "--for", "comfyui")
    knob = advice(doc, "comfyui")
    assert knob["framework_version"] is None
    assert knob["knob"].startswith("python main.py --use-")


def test_install_sageattention_with_diffusers_never_plans_1_0_6_silently() -> None:
    env = h200_with(DIFFUSERS)
    plan = plan_backend(env, load_index(), "sageattention")
    assert all(c.version != "1.0.6" for c in plan.candidates)
    refusal = next(r for r in plan.rejections if "1.0.6" in r.what)
    assert "diffusers 0.42.1 refuses 1.0.6: it needs sageattention>=2.1.1" in refusal.reason
    install = plan_install(env, load_index(), "sageattention")
    assert install.candidate.version == "2.2.0"  # the source build (nvcc is on the H200)
    assert any("sageattention>=2.1.1" in n for n in install.notes)


def test_without_nvcc_the_ways_out_name_the_real_ways() -> None:
    env = h200_with(DIFFUSERS)
    toolkit = dataclasses.replace(env.cuda_toolkit, nvcc_path=None, nvcc_version=None, release=None)
    env = dataclasses.replace(env, cuda_toolkit=toolkit)
    plan = plan_backend(env, load_index(), "sageattention")
    assert not plan.candidates
    text = " ".join(plan.ways_out)
    assert "diffusers needs sageattention>=2.1.1" in text
    assert "--source source-build" in text
    assert "woct0rdho/SageAttention" in text


def test_install_keeps_vllm_pins_as_constraints() -> None:
    env = h200_with(VLLM)
    install = plan_install(env, load_index(), "xformers")
    assert "transformers<5.23.0,>=5.16.1" in install.protected
    assert "flashinfer-python==0.7.3" in install.protected
    # torch stays pinned to what is installed, never to vLLM's (a contradiction pip refuses)
    assert "torch==2.14.0" not in install.protected


def test_flash_attn_is_not_offered_to_a_vllm_user() -> None:
    env = h200_with(VLLM)
    diagnosis = diagnose(env, load_rules(), index=load_index())
    vllm = [a for a in diagnosis.frameworks if a.framework == "vllm"]
    assert vllm
    assert all("attn-doctor install" not in a.way for a in vllm)


def _advice(diagnosis: Diagnosis, framework: str) -> list[str]:
    return [a.name for a in diagnosis.frameworks if a.framework == framework]


def test_a_backend_without_a_name_is_not_offered_to_the_framework() -> None:
    env = h200_with(VLLM, PackageFacts(name="xformers", version="0.0.35"))
    diagnosis = diagnose(env, load_rules(), index=load_index())
    vllm = next(a for a in diagnosis.frameworks if a.framework == "vllm")
    assert "XFORMERS" not in (vllm.name, *vllm.alternatives)


@pytest.mark.parametrize(
    ("installed", "expect"),
    [("1.0.6", "framework-setting-backend-too-old"), (None, "framework-setting-backend-missing")],
    ids=["too-old", "missing"],
)
def test_diffusers_variable_naming_sage(installed: str | None, expect: str) -> None:
    extra = (PackageFacts(name="sageattention", version=installed),) if installed else ()
    env = h200_with(DIFFUSERS, *extra, env_vars=(("DIFFUSERS_ATTN_BACKEND", "sage"),))
    ids = {f.id for f in diagnose(env, load_rules()).findings}
    assert expect in ids


def test_sglang_and_transformers_5_25_cannot_share_kernels() -> None:
    env = h200_with(SGLANG, PackageFacts(name="transformers", version="5.25.0"))
    found = diagnose(env, load_rules()).findings
    findings = [f for f in found if f.id == "framework-pins-disjoint"]
    assert findings
    assert "kernels" in findings[0].title


def test_installing_xformers_says_comfyui_changes_its_default(tmp_path: Path) -> None:
    from attn_doctor.facts import ComfyUIFacts

    env = h200_with(comfyui=ComfyUIFacts(path=str(tmp_path), found_by="cwd", version="0.3.75"))
    install = plan_install(env, load_index(), "xformers")
    assert any("ComfyUI uses xformers" in n and "--disable-xformers" in n for n in install.notes)


def test_install_dry_run_from_the_cli_says_why_not_1_0_6(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from attn_doctor.cli import main

    snap = tmp_path / "snap.json"
    snap.write_text(h200_with(DIFFUSERS).to_json())
    with pytest.raises(SystemExit):
        main(["install", "sageattention", "--dry-run", "--json", "--snapshot", str(snap)])
    doc = json.loads(capsys.readouterr().out)
    text = json.dumps(doc)
    assert "sageattention>=2.1.1" in text
    assert "--source source-build" in text


def test_a_hub_kernels_install_next_to_sglang_says_it_cannot_hold() -> None:
    env = h200_with(SGLANG)
    install = plan_install(env, load_index(), "hub_kernels")
    assert "kernels<0.15,>=0.14.1" in install.protected
    assert any(
        "SGLang 0.5.23 requires kernels<0.15,>=0.14.1" in n and "pip refuses it" in n
        for n in install.notes
    )


def test_comfyui_portable_with_another_python_says_how_to_diagnose_it(tmp_path: Path) -> None:
    from attn_doctor.facts import ComfyUIFacts

    embedded = str(tmp_path / "python_embeded" / "python.exe")
    comfy = ComfyUIFacts(path=str(tmp_path / "ComfyUI"), found_by="cwd", python=embedded)
    found = diagnose(h200_with(comfyui=comfy), load_rules()).findings
    other = next(f for f in found if f.id == "comfyui-other-python")
    assert other.fix is not None
    assert other.fix.startswith(f"{embedded} -m pip install attn-doctor")


def test_a_kernel_the_framework_ships_makes_its_package_idle_unless_it_requires_it() -> None:
    fa2 = PackageFacts(name="flash-attn", version="2.8.3")
    fa4 = PackageFacts(name="flash-attn-4", version="4.0.0b18")
    found = diagnose(h200_with(VLLM, fa2), load_rules()).findings
    ships = [f for f in found if f.id == "framework-ships-kernel"]
    assert any("vLLM does not use the installed flash-attn" in f.title for f in ships)
    # SGLang 0.5.23 vendors FlashAttention-4 for fa4 but still requires flash-attn-4 itself
    found = diagnose(h200_with(SGLANG, fa4), load_rules()).findings
    assert not any(f.id == "framework-ships-kernel" and "SGLang" in f.title for f in found)
    notes = plan_install(h200_with(SGLANG), load_index(), "flash_attn_4").notes
    assert not any("SGLang ships its own build" in n for n in notes)


PORTABLE_PY = r"C:\Users\Jane Doe\ComfyUI_windows_portable\python_embeded\python.exe"


def _portable(*packages: PackageFacts) -> Environment:
    from attn_doctor.facts import ComfyUIFacts

    comfy = ComfyUIFacts(
        path=r"C:\Users\Jane Doe\ComfyUI_windows_portable\ComfyUI",
        found_by="cwd",
        version="0.3.75",
        python=PORTABLE_PY,
        python_version="3.12",
        packages=packages,
    )
    return h200_with(comfyui=comfy)


def test_comfyui_portable_packages_say_which_flags_would_fail() -> None:
    env = _portable(PackageFacts(name="torch", version="2.7.1+cu128"))
    found = diagnose(env, load_rules()).findings
    other = next(f for f in found if f.id == "comfyui-other-python")
    assert other.title == (
        "ComfyUI's python_embeded has torch 2.7.1+cu128, no flash-attn, no xformers "
        "and no sageattention"
    )
    assert "`--use-flash-attention` and `--use-sage-attention` would fail there" in other.cause
    assert "(Python 3.12)" in other.cause
    quoted = f'"{PORTABLE_PY}"'
    assert f"attn-doctor install sageattention --python {quoted}" in other.cause
    assert other.fix is not None
    assert other.fix.startswith(f"{quoted} -m pip install attn-doctor && {quoted} -m attn_doctor")
    assert set(other.backends) == {"flash_attn_2", "sageattention"}
    # the field survives a snapshot round trip
    again = Environment.from_json(env.to_json())
    assert again.comfyui is not None
    assert env.comfyui is not None
    assert again.comfyui.packages == env.comfyui.packages


def test_comfyui_portable_with_xformers_says_it_is_used_by_itself() -> None:
    env = _portable(
        PackageFacts(name="torch", version="2.7.1+cu128"),
        PackageFacts(name="xformers", version="0.0.31.post1"),
        PackageFacts(name="sageattention", version="2.2.0"),
    )
    other = next(f for f in diagnose(env, load_rules()).findings if f.id == "comfyui-other-python")
    assert "xformers 0.0.31.post1" in other.title
    assert "sageattention 2.2.0" in other.title
    assert "ComfyUI uses xformers memory_efficient_attention there by itself" in other.cause
    assert "`--use-flash-attention` would fail there: its package is" in other.cause
    assert "--use-sage-attention` would fail" not in other.cause


def test_an_install_next_to_comfyui_portable_names_its_interpreter() -> None:
    env = _portable(PackageFacts(name="torch", version="2.7.1+cu128"))
    install = plan_install(env, load_index(), "sageattention")
    assert any(
        "ComfyUI runs under its own" in n
        and f'attn-doctor install sageattention --python "{PORTABLE_PY}"' in n
        for n in install.notes
    )


def test_vllm_pins_an_older_transformers_than_the_installed_one() -> None:
    env = h200_with(VLLM, PackageFacts(name="transformers", version="5.25.0"))
    found = diagnose(env, load_rules()).findings
    conflict = next(f for f in found if f.id == "framework-pin-conflict")
    assert "transformers<5.23.0,>=5.16.1" in conflict.title
    assert conflict.fix is not None
    assert "-m pip install 'transformers<5.23.0,>=5.16.1'" in conflict.fix
    # the pin the machine already breaks is not a constraint (it would refuse every install)
    assert (
        "transformers<5.23.0,>=5.16.1" not in plan_install(env, load_index(), "xformers").protected
    )


def test_framework_pins_follow_the_machines_markers() -> None:
    vllm = dataclasses.replace(
        VLLM,
        requires=(
            *VLLM.requires,
            'xformers==0.0.35; platform_system == "Linux"',
            'triton-windows==3.5.0; platform_system == "Windows"',
            'pytest==9.0; extra == "test"',
        ),
    )
    lines = plan_install(h200_with(vllm), load_index(), "flash_attn_2").protected
    assert "xformers==0.0.35" in lines
    assert not any(line.startswith(("triton-windows", "pytest")) for line in lines)
