"""``attn-doctor check``: facts, diagnosis, backend table, recommendation."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from attn_doctor.errors import ExitCode, UsageError
from attn_doctor.facts import Environment
from attn_doctor.framework_names import FRAMEWORK_NAMES, FrameworkName
from attn_doctor.snapshot import host_path, load_snapshot, save_snapshot

if TYPE_CHECKING:
    from attn_doctor.report.check_result import ImportExplanation


@click.command("check")
@click.option("--json", "json_mode", is_flag=True, help="Print one versioned JSON document.")
@click.option("--deep", is_flag=True, help="Also import each package in a child process.")
@click.option(
    "--snapshot",
    "snapshot_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Diagnose the machine recorded in this snapshot instead of this one.",
)
@click.option(
    "--save-snapshot",
    "save_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write this machine's facts to FILE (for --snapshot elsewhere); {host} in FILE "
    "becomes this machine's host name (one file per node: attn-doctor fleet DIR).",
)
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too, not only on errors.")
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="People's view: every fact, each finding's evidence and sources, every backend's "
    "status and why (--json always has all of it).",
)
@click.option(
    "--verify",
    "run_verify",
    is_flag=True,
    help="Then prove every backend check calls usable (attn-doctor verify --quick).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1.0),
    default=60.0,
    show_default=True,
    help="Seconds each child-process import may take with --deep.",
)
@click.option(
    "--for",
    "for_frameworks",
    multiple=True,
    type=click.Choice(FRAMEWORK_NAMES),
    help="Also say the recommendation in this framework's knob (frameworks installed here "
    "always get theirs). Repeatable.",
)
@click.option(
    "--model",
    "model",
    help="Answer SDPA's dispatch for this model's dtype and head dim (with --deep: torch is "
    "asked, with its heads and mask too). A folder with config.json, or a Hub id in the local "
    "cache; no download.",
)
@click.option(
    "--comfyui",
    "comfyui_path",
    type=click.Path(path_type=Path, file_okay=False),
    help="The ComfyUI folder to look at (default: the current folder, or its ComfyUI/).",
)
def check_command(
    *,
    model: str | None = None,
    for_frameworks: tuple[FrameworkName, ...] = (),
    comfyui_path: Path | None = None,
    json_mode: bool,
    deep: bool,
    snapshot_path: Path | None,
    save_path: Path | None,
    strict: bool,
    verbose: bool,
    run_verify: bool,
    timeout: float,
) -> None:
    """What is here, what works, what is wrong and why, and the fix."""
    from attn_doctor.diagnose import diagnose
    from attn_doctor.report.envelope import make_envelope, write_envelope
    from attn_doctor.rules_data import load_rules

    inputs = None
    if model is not None:  # the model's SDPA inputs, from its config.json (no network)
        import os

        from attn_doctor.probe.model_config import read_model_inputs

        inputs = read_model_inputs(model, dict(os.environ))
    if snapshot_path is not None:
        if deep or run_verify:
            raise UsageError("--deep and --verify run things on this machine: not with --snapshot")
        if comfyui_path is not None:
            raise UsageError("--comfyui looks at a folder on this machine: not with --snapshot")
        env = load_snapshot(snapshot_path)
    else:
        from attn_doctor.probe import probe_environment

        if deep:
            from attn_doctor.probe.imports import ImportBoard
            from attn_doctor.report.console import progress_on_stderr

            board = ImportBoard(timeout=timeout)
            with progress_on_stderr(board.describe):
                env = probe_environment(
                    deep=True,
                    timeout=timeout,
                    board=board,
                    comfyui=comfyui_path,
                    sdpa_inputs=inputs,
                )
        else:
            env = probe_environment(timeout=timeout, comfyui=comfyui_path)
    if save_path is not None:
        save_snapshot(env, host_path(save_path))
    from attn_doctor.bench.cache import bench_evidence

    evidence = bench_evidence(env) if snapshot_path is None else None
    index = None
    if env.gpus:  # a GPU machine: say exactly which wheel fits (CPU-only: nothing to install)
        from attn_doctor.index import load_index

        index = load_index()
    request = None
    if inputs is not None:
        from typing import cast

        from attn_doctor.decide import Request
        from attn_doctor.planner.sdpa_rule import Dtype

        request = Request(dtype=cast("Dtype | None", inputs.dtype), head_dim=inputs.head_dim)
    diagnosis = diagnose(
        env,
        load_rules(),
        evidence=evidence,
        index=index,
        frameworks=for_frameworks,
        request=request,
    )
    explained = _explain_failed_imports(env)
    verification = None
    if run_verify:
        from attn_doctor.verify.runner import verify_usable

        verification = verify_usable(diagnosis, timeout=max(timeout, 300.0), quick=True)
    failed = diagnosis.has_errors or (strict and diagnosis.has_warnings)
    failed = failed or (verification is not None and not verification.ok)
    code = ExitCode.PROBLEMS if failed else ExitCode.OK
    knowledge = None
    if snapshot_path is None:  # this machine: where the knowledge planning it came from
        import os

        from attn_doctor.overlay import knowledge_line

        knowledge = knowledge_line(os.environ)
    if json_mode:
        from attn_doctor.report.check_result import CheckReport

        result = CheckReport(
            environment=env,
            diagnosis=diagnosis,
            import_explanations=explained,
            verification=verification,
            knowledge=knowledge,
        )
        write_envelope(make_envelope("check", result=result, exit_code=code))
    else:
        from attn_doctor.report.check_view import render_check  # plain text: no rich import

        render_check(
            env,
            diagnosis,
            snapshot=snapshot_path,
            verbose=verbose,
            import_explanations=explained,
        )
        if knowledge is not None:
            click.echo(knowledge, err=True)
        if verification is not None:
            from attn_doctor.report.verify_view import render_verify

            render_verify(verification)
    sys.exit(int(code))


def _explain_failed_imports(env: Environment) -> tuple[ImportExplanation, ...]:
    """Each failed ``--deep`` import, matched against the knowledge of known failures."""
    if not any(res.status != "ok" for res in env.imports):
        return ()
    from attn_doctor.diagnose import package_of_module
    from attn_doctor.explain.engine import explain_imports
    from attn_doctor.report.check_result import ImportExplanation

    # One explanation per package, for its first failed module (the others failed with it).
    seen: set[str] = set()
    out = []
    for module, result in explain_imports(env):
        package = package_of_module(module)
        if package not in seen:
            seen.add(package)
            out.append(ImportExplanation(module=module, explanation=result))
    return tuple(out)
