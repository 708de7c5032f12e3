"""A source build through the installer: build requirements first, the build's environment,
the kept log and the measured duration."""

from __future__ import annotations

import shutil
from pathlib import Path

from attn_doctor.install.execute import InstallOptions, execute_install
from attn_doctor.planner.plans import InstallPlan, WheelCandidate
from tests.integration.conftest import freeze, isolated_env, venv_python
from tests.integration.wheels import build_build_requirements, build_fake_sdist

GB = 1024**3


def test_source_build_gets_its_environment_and_is_timed(
    venv: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    house = tmp_path / "house"
    shutil.copytree(wheelhouse, house)
    build_fake_sdist(house)
    build_build_requirements(house)
    py = venv_python(venv)
    plan = InstallPlan(
        backend="flash_attn_2",
        candidate=WheelCandidate(
            backend="flash_attn_2",
            source="source-build",
            trust="official",
            requirement="flash-attn==2.8.3",
            pip_args=("--no-binary", "flash-attn"),
            build_env=(("FLASH_ATTN_CUDA_ARCHS", "90"),),
        ),
        protected=(),
        commands=(),
    )
    report = execute_install(
        plan,
        InstallOptions(
            python=str(py),
            index_args=("--no-index", "--find-links", str(house)),
            environ=isolated_env(),
            cpu_count=4,
            ram_available_bytes=64 * GB,
        ),
    )
    assert report.check is not None
    assert report.check.status == "ok"
    assert report.build_seconds is not None
    assert dict(report.build_env)["MAX_JOBS"] == "2"
    assert report.commands[0].split(" -c ")[0].endswith("ninja psutil")
    assert "--no-build-isolation" in report.commands[1]
    frozen = freeze(py)
    for line in ("flash-attn==2.8.3", "ninja==1.13.0", "psutil==7.0.0", "torch==2.8.0+cu128"):
        assert line in frozen
    (module,) = venv.glob("lib/python*/site-packages/flash_attn/__init__.py")
    text = module.read_text()
    assert '"MAX_JOBS": "2"' in text
    assert '"FLASH_ATTN_CUDA_ARCHS": "90"' in text
    assert '"FLASH_ATTENTION_FORCE_BUILD": "TRUE"' in text
    assert report.log is not None
    assert "building flash-attn 2.8.3 with" in Path(report.log).read_text()
