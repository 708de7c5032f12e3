"""The whole probe finds a ComfyUI folder and a project's Hub kernels, and the facts round-trip."""

from __future__ import annotations

import json
from pathlib import Path

from attn_doctor.facts import Environment
from attn_doctor.probe import probe_environment
from tests.conftest import isolated_home_env


def test_probe_records_comfyui_hub_kernels_and_framework_variables(tmp_path: Path) -> None:
    comfy = tmp_path / "ComfyUI"
    (comfy / "comfy").mkdir(parents=True)
    (comfy / "comfy" / "cli_args.py").write_text("")
    (comfy / "main.py").write_text("")
    (comfy / "comfyui_version.py").write_text('__version__ = "0.3.75"\n')
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[tool.kernels.dependencies]\n"kernels-community/flash-attn2" = 4\n'
    )
    environ = {
        **isolated_home_env(),
        "PATH": "/usr/bin:/bin",
        "VLLM_ATTENTION_BACKEND": "FLASHINFER",
        "KERNELS_CACHE": str(tmp_path / "no-cache"),
    }
    env = probe_environment(environ=environ, cwd=project, comfyui=comfy, timeout=5.0)
    assert env.comfyui is not None
    assert env.comfyui.version == "0.3.75"
    assert env.comfyui.found_by == "option"
    assert env.hub_kernels is not None
    assert env.hub_kernels.locked[0].repo == "kernels-community/flash-attn2"
    assert env.env("VLLM_ATTENTION_BACKEND") == "FLASHINFER"
    again = Environment.from_json(env.to_json())
    assert again == env
    assert json.loads(env.to_json())["comfyui"]["path"] == str(comfy)


def test_a_folder_that_is_not_comfyui_is_an_unknown_fact(tmp_path: Path) -> None:
    environ = {**isolated_home_env(), "PATH": "/usr/bin:/bin"}
    env = probe_environment(environ=environ, cwd=tmp_path, comfyui=tmp_path, timeout=5.0)
    assert env.comfyui is None
    assert "not a ComfyUI folder" in (env.unknown_reason("comfyui") or "")


def test_vllm_and_sglang_args_from_the_decision_here(tmp_path: Path) -> None:
    from attn_doctor.loadtime import sglang_args, vllm_args

    environ = {**isolated_home_env(), "PATH": "/usr/bin:/bin"}
    vllm = vllm_args(environ=environ)
    sglang = sglang_args(environ=environ)
    for args in (vllm, sglang):
        assert args == [] or args[0] == "--attention-backend"
    env = probe_environment(environ=environ, cwd=tmp_path, timeout=5.0)
    if not env.gpus:
        assert vllm == []  # vLLM's names here are its CUDA ones: keep its CPU default


def test_probe_reads_the_portable_builds_packages_without_running_it(tmp_path: Path) -> None:
    portable = tmp_path / "ComfyUI_windows_portable"
    comfy = portable / "ComfyUI"
    (comfy / "comfy").mkdir(parents=True)
    (comfy / "comfy" / "cli_args.py").write_text("")
    (comfy / "main.py").write_text("")
    embeded = portable / "python_embeded"
    embeded.mkdir()
    # not an interpreter: were the probe to run it, it would fail
    (embeded / "python.exe").write_text("not a program")
    (embeded / "python312._pth").write_text("python312.zip\n.\nLib/site-packages\n")
    info = embeded / "Lib" / "site-packages" / "torch-2.7.1+cu128.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.7.1+cu128\n")
    environ = {**isolated_home_env(), "PATH": "/usr/bin:/bin"}
    env = probe_environment(environ=environ, cwd=portable, timeout=5.0)
    assert env.comfyui is not None
    assert env.comfyui.python == str(embeded / "python.exe")
    assert env.comfyui.python_version == "3.12"
    assert [(p.name, p.version) for p in env.comfyui.packages or ()] == [("torch", "2.7.1+cu128")]
    assert Environment.from_json(env.to_json()) == env
