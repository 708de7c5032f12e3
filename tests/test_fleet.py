"""`attn-doctor fleet`: grouping and outliers over recorded and made-up clusters, bad input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from attn_doctor.diagnose import diagnose
from attn_doctor.errors import ExitCode, SnapshotError
from attn_doctor.facts import Environment
from attn_doctor.fleet import read as fleet_read
from attn_doctor.fleet.decide import Diagnoser
from attn_doctor.fleet.group import build_report, deciding_facts
from attn_doctor.fleet.read import read_paths, read_stream
from attn_doctor.index import load_index
from attn_doctor.rules_data import load_rules

from .conftest import REPO_ROOT, SNAPSHOTS
from .fleet_helpers import (
    broken_flash_attn_import,
    node_copy,
    old_driver,
    other_flash_attn,
    snapshot,
    write_cluster,
)

SCHEMA = json.loads((REPO_ROOT / "attn_doctor" / "schemas" / "fleet.schema.json").read_text())
RECORDED = sorted(SNAPSHOTS.glob("*.json"))


def run(*args: str, stdin: str | bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run(
        [sys.executable, "-m", "attn_doctor", "fleet", *args],
        input=stdin.encode() if isinstance(stdin, str) else stdin,
        capture_output=True,
        cwd=REPO_ROOT,
        env=env,
        check=False,
        timeout=300,
    )


def envelope(proc: subprocess.CompletedProcess[bytes]) -> dict[str, object]:
    doc = json.loads(proc.stdout)  # stdout holds one JSON document and nothing else
    jsonschema.validate(doc, SCHEMA)
    assert doc["command"] == "fleet"
    assert doc["exit_code"] == proc.returncode
    return doc


@pytest.fixture(scope="module")
def diagnoser() -> Diagnoser:
    return Diagnoser(load_rules(), load_index())


# --- the recorded machines --------------------------------------------------------------------


@pytest.mark.slow
def test_recorded_machines_each_form_a_group_with_checks_answer(diagnoser: Diagnoser) -> None:
    report = build_report(read_paths([SNAPSHOTS]), diagnoser.diagnose)
    assert report.nodes == len(RECORDED) == 20
    assert len(report.groups) == len(RECORDED)  # twenty different machines
    rules, index = load_rules(), load_index()
    by_node = {name: g for g in report.groups for name in g.nodes}
    for path in RECORDED:
        env = Environment.from_json(path.read_text())
        expected = diagnose(env, rules, index=index if env.gpus else None)
        group = by_node[path.stem]
        assert group.best_backend == expected.recommendations[0].backend, path.stem
        ready = expected.recommendations[0].usable_now and not expected.has_errors
        assert group.state == ("ready" if ready else "not-ready"), path.stem
    # Every node but the reference one is an outlier, with the facts that differ named.
    assert len(report.outliers) == len(RECORDED) - 1
    assert all(o.differences for o in report.outliers)
    assert not report.all_ready_and_same


def test_deciding_facts_name_what_decides_backends() -> None:
    env = Environment.from_dict(snapshot("a100-linux"))
    facts = {f.name: f.value for f in deciding_facts(env)}
    assert facts["driver"] == "550.127.05 (CUDA 12.4)"
    assert facts["gpus"] == "2x NVIDIA A100-SXM4-80GB (sm80)"
    assert facts["torch"] == "2.6.0+cu124 (cuda 12.4)"
    assert facts["torch C++ ABI"] == "False"
    assert facts["glibc"] == "glibc 2.31"
    assert facts["python"] == "3.10 (cp310)"
    assert facts["flash-attn"] == "2.7.4.post1"
    assert facts["import flash_attn"] == "ok"
    assert "peft" not in facts  # not an attention package
    laptop = {
        f.name: f.value for f in deciding_facts(Environment.from_dict(snapshot("cpu-only-laptop")))
    }
    assert laptop["driver"] == laptop["gpus"] == "none"


# --- made-up clusters -------------------------------------------------------------------------


def test_identical_nodes_are_one_ready_group(tmp_path: Path, diagnoser: Diagnoser) -> None:
    write_cluster(tmp_path, "a100-linux", 10)
    report = build_report(read_paths([tmp_path]), diagnoser.diagnose)
    assert report.nodes == report.ready == 10
    assert [len(g.nodes) for g in report.groups] == [10]
    assert report.groups[0].best_backend == "flash_attn_2"
    assert report.all_ready_and_same
    assert report.outliers == ()


def test_one_old_driver_is_the_outlier_with_its_finding(
    tmp_path: Path, diagnoser: Diagnoser
) -> None:
    write_cluster(tmp_path, "a100-linux", 10, {7: old_driver})
    report = build_report(read_paths([tmp_path]), diagnoser.diagnose)
    assert [len(g.nodes) for g in report.groups] == [9, 1]
    (outlier,) = report.outliers
    assert outlier.node == "node07"
    assert outlier.state == "not-ready"
    assert [(d.name, d.value, d.reference) for d in outlier.differences] == [
        ("driver", "470.256.02 (CUDA 11.4)", "550.127.05 (CUDA 12.4)")
    ]
    assert "driver-too-old-for-torch" in {f.id for f in outlier.findings}
    assert all(f.severity in ("error", "warning") for f in outlier.findings)
    assert report.ready == 9
    assert not report.all_ready_and_same


def test_other_flash_attn_build_differs_but_all_ready(tmp_path: Path, diagnoser: Diagnoser) -> None:
    write_cluster(tmp_path, "a100-linux", 10, {3: other_flash_attn, 8: other_flash_attn})
    report = build_report(read_paths([tmp_path]), diagnoser.diagnose)
    assert [g.nodes for g in report.groups] == [
        tuple(f"node{n:02d}" for n in (1, 2, 4, 5, 6, 7, 9, 10)),
        ("node03", "node08"),
    ]
    assert {o.node for o in report.outliers} == {"node03", "node08"}
    for o in report.outliers:
        assert [(d.name, d.value) for d in o.differences] == [("flash-attn", "2.7.3")]
    # Usable everywhere with the same best backend: exit 0, unless --strict.
    assert report.all_ready_and_same


def test_failed_import_changes_the_best_backend(tmp_path: Path, diagnoser: Diagnoser) -> None:
    write_cluster(tmp_path, "a100-linux", 6, {5: broken_flash_attn_import})
    report = build_report(read_paths([tmp_path]), diagnoser.diagnose)
    (outlier,) = report.outliers
    assert outlier.node == "node05"
    assert outlier.best_backend != "flash_attn_2"
    assert [(d.name, d.value, d.reference) for d in outlier.differences] == [
        ("import flash_attn", "error", "ok")
    ]
    assert outlier.findings  # the diagnosis says why the import failed
    assert not report.same_best_backend
    assert "best backends differ" in report.verdict


@pytest.mark.functional
def test_cli_exit_codes_and_json(tmp_path: Path) -> None:
    same = tmp_path / "same"
    write_cluster(same, "a100-linux", 4)
    proc = run(str(same), "--json")
    assert proc.returncode == ExitCode.OK, proc.stderr
    assert envelope(proc)["ok"] is True

    drift = tmp_path / "drift"
    write_cluster(drift, "a100-linux", 4, {2: other_flash_attn})
    assert run(str(drift)).returncode == ExitCode.OK
    strict = run(str(drift), "--strict", "--json")
    assert strict.returncode == ExitCode.PROBLEMS
    result = envelope(strict)["result"]
    assert isinstance(result, dict)
    assert [o["node"] for o in result["outliers"]] == ["node02"]

    broken = tmp_path / "broken"
    write_cluster(broken, "a100-linux", 4, {4: old_driver})
    human = run(str(broken))
    assert human.returncode == ExitCode.PROBLEMS
    text = human.stdout.decode()
    assert "node04" in text
    assert "driver-too-old-for-torch" in text
    assert "3 of 4 nodes ready" in text


@pytest.mark.functional
def test_check_json_documents_and_stdin_lines(tmp_path: Path) -> None:
    """`check --json` output is read as well as snapshots, from files and from stdin lines."""
    check = subprocess.run(
        [sys.executable, "-m", "attn_doctor", "check", "--json", "--snapshot",
         str(SNAPSHOTS / "driver-too-old.json")],
        capture_output=True, text=True, cwd=REPO_ROOT, check=False, timeout=300,
    )  # fmt: skip
    assert check.returncode == ExitCode.PROBLEMS
    document = json.loads(check.stdout)
    (tmp_path / "gpu-a.json").write_text(check.stdout)
    write_cluster(tmp_path / "snaps", "driver-too-old", 2)
    proc = run(str(tmp_path / "gpu-a.json"), str(tmp_path / "snaps"), "--json")
    result = envelope(proc)["result"]
    assert isinstance(result, dict)
    assert result["nodes"] == 3
    assert [sorted(g["nodes"]) for g in result["groups"]] == [["gpu-a", "node01", "node02"]]
    assert proc.returncode == ExitCode.PROBLEMS  # the driver is too old on every node

    lines = "\n".join(
        json.dumps(d)
        for d in (
            document,
            node_copy(snapshot("a100-linux"), 1),
            node_copy(snapshot("a100-linux"), 2),
        )
    )
    proc = run("--json", stdin=lines + "\n")
    result = envelope(proc)["result"]
    assert isinstance(result, dict)
    assert [g["nodes"] for g in result["groups"]] == [["stdin:2", "stdin:3"], ["stdin:1"]]


@pytest.mark.functional
def test_a_failed_check_is_a_failed_node_not_bad_input(tmp_path: Path) -> None:
    write_cluster(tmp_path, "a100-linux", 2)
    failed = {
        "schema": "attn-doctor/envelope", "schema_version": 1, "command": "check",
        "attn_doctor_version": "0.1.0", "ok": False, "exit_code": 3, "result": None,
        "error": {"code": "internal", "message": "internal error: boom", "hint": None},
    }  # fmt: skip
    (tmp_path / "node03.json").write_text(json.dumps(failed))
    proc = run(str(tmp_path), "--json")
    assert proc.returncode == ExitCode.PROBLEMS
    result = envelope(proc)["result"]
    assert isinstance(result, dict)
    assert result["failed"] == 1
    assert result["failures"][0]["node"] == "node03"
    assert "boom" in result["failures"][0]["reason"]


def test_same_file_name_in_two_folders_keeps_both(tmp_path: Path, diagnoser: Diagnoser) -> None:
    write_cluster(tmp_path / "rack1", "a100-linux", 1)
    write_cluster(tmp_path / "rack2", "a100-linux", 1)
    nodes = list(read_paths([tmp_path / "rack1", tmp_path / "rack2"]))
    assert len({n.name for n in nodes}) == 2


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"", "empty"),
        (b'{"hello": 1}', "neither an attn-doctor snapshot nor"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"schema_version": 1, "host": {"os": "plan9"}}', "'plan9' is not one of"),
        (
            b'{"schema": "attn-doctor/envelope", "schema_version": 1, "command": "install",'
            b' "result": null, "error": null}',
            "a `install` document",
        ),
        (b'{"schema": "attn-doctor/envelope", "schema_version": 7}', "schema_version 7"),
    ],
    ids=[
        "malformed",
        "binary",
        "not-utf8",
        "empty",
        "wrong-schema",
        "not-object",
        "bad-field",
        "other-command",
        "newer-envelope",
    ],
)
@pytest.mark.functional
def test_bad_file_is_listed_and_the_other_nodes_reported(
    tmp_path: Path, content: bytes, message: str
) -> None:
    write_cluster(tmp_path, "a100-linux", 2)
    bad = tmp_path / "node99.json"
    bad.write_bytes(content)
    proc = run(str(tmp_path))
    assert proc.returncode == ExitCode.INCOMPLETE
    out = proc.stdout.decode()
    assert str(bad) in out
    assert message in out
    assert "2 of 2 nodes ready" in out
    doc = json.loads(run(str(tmp_path), "--json").stdout)
    assert doc["exit_code"] == ExitCode.INCOMPLETE
    assert doc["result"]["nodes"] == 2
    (unreadable,) = doc["result"]["unreadable"]
    assert unreadable["source"] == str(bad)
    assert message in unreadable["error"]
    # Nothing readable at all: bad input, one line naming the file.
    alone = tmp_path / "alone"
    alone.mkdir()
    bad.rename(alone / bad.name)
    proc = run(str(alone))
    assert proc.returncode == ExitCode.USAGE
    err = proc.stderr.decode()
    assert str(alone / bad.name) in err
    assert message in err
    assert err.count("\n") <= 2  # one line (and a hint)
    assert proc.stdout == b""
    doc = json.loads(run(str(alone), "--json").stdout)
    assert doc["exit_code"] == ExitCode.USAGE
    assert doc["error"]["code"] == "bad-snapshot"


@pytest.mark.functional
def test_bad_line_on_stdin_names_the_line() -> None:
    good = json.dumps(snapshot("a100-linux"))
    proc = run("-", stdin=f"{good}\n{{oops\n")
    assert proc.returncode == ExitCode.INCOMPLETE
    assert "stdin:2" in proc.stdout.decode()
    assert "1 of 1 nodes ready" in proc.stdout.decode()


def test_too_large_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fleet_read, "MAX_INPUT_BYTES", 1000)
    path = tmp_path / "big.json"
    path.write_text(json.dumps(snapshot("a100-linux")))
    with pytest.raises(SnapshotError, match=r"big\.json: .* too large"):
        list(read_paths([path]))
    with pytest.raises(SnapshotError, match="stdin: more than"):
        read_stream(io.BytesIO(path.read_bytes()))


@pytest.mark.parametrize(
    ("make", "message"),
    [("missing", "no such file or folder"), ("empty-dir", "no .json or .jsonl files")],
)
@pytest.mark.functional
def test_missing_inputs(tmp_path: Path, make: str, message: str) -> None:
    target = tmp_path / "x"
    if make == "empty-dir":
        target.mkdir()
    proc = run(str(target))
    assert proc.returncode == ExitCode.USAGE
    assert message in proc.stderr.decode()
    assert str(target) in proc.stderr.decode()


@pytest.mark.functional
def test_usage_errors() -> None:
    assert run("--deep", "x").returncode == ExitCode.USAGE
    assert run("--ray", "x").returncode == ExitCode.USAGE


@pytest.mark.functional
def test_save_snapshot_per_host_then_fleet(tmp_path: Path) -> None:
    """The Slurm recipe: every node saves `{host}.json` into one folder; fleet reads it."""
    import socket

    proc = subprocess.run(
        [sys.executable, "-m", "attn_doctor", "check", "--json",
         "--save-snapshot", str(tmp_path / "{host}.json")],
        capture_output=True, text=True, cwd=REPO_ROOT, check=False, timeout=300,
    )  # fmt: skip
    assert proc.returncode in (ExitCode.OK, ExitCode.PROBLEMS), proc.stderr
    host = socket.gethostname().split(".")[0]
    assert [p.name for p in tmp_path.iterdir()] == [f"{host}.json"]
    result = envelope(run(str(tmp_path), "--json"))["result"]
    assert isinstance(result, dict)
    assert result["groups"][0]["nodes"] == [host]


def test_a_diagnosis_from_another_version_is_redone_here() -> None:
    """A `check --json` whose diagnosis this version cannot read still gives its facts."""
    from attn_doctor.fleet.read import parse_document

    doc = {
        "schema": "attn-doctor/envelope", "schema_version": 1, "command": "check",
        "attn_doctor_version": "9.0.0", "ok": True, "exit_code": 0, "error": None,
        "result": {"environment": snapshot("a100-linux"),
                   "diagnosis": {"findings": [], "backends": [], "recommendations": [
                       {"rank": 1, "backend": "a_future_backend", "attn_implementation": None,
                        "usable_now": True, "reason": "new"}]}},
    }  # fmt: skip
    node = parse_document(doc, name="n", source="n.json")
    assert node.environment is not None
    assert node.diagnosis is None
    recorded = parse_document(
        {**doc, "result": {**doc["result"], "diagnosis": {
            "findings": [], "backends": [], "recommendations": [
                {"rank": 1, "backend": "xformers", "attn_implementation": None,
                 "usable_now": True, "reason": "measured fastest here"}]}}},
        name="m", source="m.json",
    )  # fmt: skip
    report = build_report([recorded], Diagnoser().diagnose)
    assert report.groups[0].best_backend == "xformers"  # the node's own answer is kept


@pytest.mark.functional
def test_save_snapshots_turns_check_documents_into_snapshots(tmp_path: Path) -> None:
    nodes = tmp_path / "in"
    write_cluster(nodes, "a100-linux", 2)
    lines = "\n".join(json.dumps(node_copy(snapshot("t4-colab"), n)) for n in (1, 2))
    proc = run(str(nodes), "-", "--save-snapshots", str(tmp_path / "out"), stdin=lines)
    assert proc.returncode == ExitCode.PROBLEMS, proc.stderr  # two kinds of machine
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "node01.json",
        "node02.json",
        "stdin_1.json",
        "stdin_2.json",
    ]
    again = run(str(tmp_path / "out"), "--json")
    result = envelope(again)["result"]
    assert isinstance(result, dict)
    assert [len(g["nodes"]) for g in result["groups"]] == [2, 2]
