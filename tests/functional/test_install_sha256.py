"""A wheel whose content does not match its recorded sha256 is refused before anything changes
(real pip in a throw-away venv, the wheel served by a local HTTP server)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from attn_doctor.errors import InstallFailed
from attn_doctor.install.execute import InstallOptions, execute_install
from attn_doctor.install.journal import journal_path
from attn_doctor.planner.integrity import UNPINNED_WARNING, integrity_note, pinned_requirement
from attn_doctor.planner.pip_command import command_lines
from attn_doctor.planner.plans import InstallPlan, WheelCandidate
from tests.integration.conftest import freeze, isolated_env, venv_python
from tests.integration.wheels import build_wheel

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _candidate(url: str, sha256: str | None, source: str = "upstream-release") -> WheelCandidate:
    return WheelCandidate(
        backend="flash_attn_2",
        source=source,  # type: ignore[arg-type]
        trust="official",
        requirement=f"flash-attn @ {url}",
        version="2.8.3",
        url=url,
        sha256=sha256,
        verified=True,
    )


def test_a_wheel_that_does_not_match_its_sha256_is_refused(
    venv: Path, serve_dir: tuple[Path, str], tmp_path: Path
) -> None:
    root, base = serve_dir
    genuine = build_wheel(
        tmp_path / "genuine", "flash-attn", "2.8.3", {"flash_attn/__init__.py": "OK = 1\n"}
    )
    recorded = hashlib.sha256(genuine.read_bytes()).hexdigest()
    # The served file has the same name and a different content (a replaced release asset).
    served = build_wheel(root, "flash-attn", "2.8.3", {"flash_attn/__init__.py": "EVIL = 1\n"})
    assert hashlib.sha256(served.read_bytes()).hexdigest() != recorded
    url = f"{base}/{served.name}"
    cand = _candidate(url, recorded)
    assert pinned_requirement(cand) == f"flash-attn @ {url}#sha256={recorded}"
    py = venv_python(venv)
    plan = InstallPlan(
        backend="flash_attn_2",
        candidate=cand,
        protected=(),
        commands=command_lines(cand, python=str(py)),
    )
    assert f"#sha256={recorded}" in plan.commands[-1]
    before = freeze(py)
    environ = {**isolated_env(), "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    with pytest.raises(InstallFailed) as failed:
        execute_install(
            plan,
            InstallOptions(python=str(py), environ=environ, verify_kernels=False),
        )
    text = str(failed.value) + str(getattr(failed.value, "hint", ""))
    assert "do not match the hashes" in text.lower(), text[-800:]
    assert freeze(py) == before
    assert not journal_path(venv).exists()
    assert not list(venv.glob("lib/python*/site-packages/flash_attn"))
    assert os.environ.get("PIP_REQUIRE_HASHES") is None


def test_an_unknown_hash_on_a_community_build_is_said_in_words() -> None:
    cand = _candidate("https://example.invalid/x.whl", None, source="community")
    note = integrity_note(cand)
    assert note is not None
    assert note.startswith(UNPINNED_WARNING)
    assert pinned_requirement(cand) == cand.requirement


def test_an_unpinned_community_wheel_has_its_sha256_recorded_on_first_download(
    venv: Path, wheelhouse: Path, serve_dir: tuple[Path, str]
) -> None:
    import shutil

    root, base = serve_dir
    (source,) = wheelhouse.glob("flash_attn-2.8.3-*.whl")
    served = Path(shutil.copy(source, root / source.name))
    digest = hashlib.sha256(served.read_bytes()).hexdigest()
    cand = _candidate(f"{base}/{served.name}", None, source="community")
    py = venv_python(venv)
    plan = InstallPlan(
        backend="flash_attn_2",
        candidate=cand,
        protected=(),
        commands=command_lines(cand, python=str(py)),
    )
    environ = {**isolated_env(), "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    report = execute_install(
        plan, InstallOptions(python=str(py), environ=environ, verify_kernels=False)
    )
    assert any(
        n.startswith(UNPINNED_WARNING) and digest in n and "first download" in n
        for n in report.notes
    ), report.notes
    assert any(line.startswith("flash-attn @ ") for line in freeze(py).splitlines())
