"""``fleet --ray``: run ``attn-doctor check --json`` once on every alive node of a Ray cluster.

One task per node, pinned there with ``NodeAffinitySchedulingStrategy(node_id, soft=False)``
(Ray's own way to run something on a chosen node), asking for no CPU so that a node busy with a
training job still answers. The task runs ``check`` in a child process of the Ray worker,
under the node's own Python (the environment the cluster's jobs use): a probe that crashes or
hangs then takes only that process down, and the per-node timeout applies. A node that fails,
hangs or has no attn-doctor is reported as a failed node; the others are still grouped.

Ray is an optional extra (``pip install 'attn-doctor[fleet]'``); this module is imported only
by ``fleet --ray``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from typing import Any

from attn_doctor.errors import SnapshotError, UsageError
from attn_doctor.fleet.read import parse_document
from attn_doctor.fleet.types import NodeInput

SCHEDULING_GRACE_S = 60.0
"""Added to the per-node timeout on the driver's side: starting a Ray worker on a node (and
importing attn-doctor there) takes seconds before ``check`` itself starts."""


def check_on_this_node(check_args: list[str], timeout: float) -> dict[str, Any]:
    """The Ray task: ``attn-doctor check --json`` here, in a child process, with a timeout.

    The child gets its own process group so that, on timeout, what it started (a hung
    ``nvidia-smi``) is ended with it.
    """
    cmd = [sys.executable, "-m", "attn_doctor", "check", "--json", *check_args]
    answer: dict[str, Any] = {"host": socket.gethostname(), "timeout": False, "returncode": None}
    posix = os.name == "posix"
    try:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=posix,
        )
    except OSError as exc:
        return {**answer, "stdout": "", "stderr": f"cannot start {sys.executable}: {exc}"}
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        if posix:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.kill()
        proc.communicate()
        return {**answer, "timeout": True, "stdout": "", "stderr": ""}
    return {**answer, "returncode": proc.returncode, "stdout": stdout, "stderr": stderr[-4000:]}


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def node_from_answer(
    answer: dict[str, Any], *, name: str, source: str, timeout: float
) -> NodeInput:
    """A node from what its task returned; a failed node when there is no check document."""
    if answer.get("timeout"):
        return NodeInput(
            name=name, source=source, failure=f"check took more than {timeout:g} s (hung?)"
        )
    stdout = str(answer.get("stdout") or "")
    rc = answer.get("returncode")
    try:
        return parse_document(json.loads(stdout), name=name, source=source)
    except (json.JSONDecodeError, SnapshotError):
        detail = _last_line(str(answer.get("stderr") or "")) or "no output"
        return NodeInput(
            name=name,
            source=source,
            failure=f"check printed no check document (exit {rc}): {detail}",
        )


def _node_names(nodes: list[dict[str, Any]]) -> list[str]:
    hosts = [str(n.get("NodeManagerHostname") or n.get("NodeManagerAddress") or "?") for n in nodes]
    return [
        host if hosts.count(host) == 1 else f"{host}#{str(n['NodeID'])[:8]}"
        for host, n in zip(hosts, nodes, strict=True)
    ]


def _import_ray() -> tuple[Any, Any]:
    try:
        ray = importlib.import_module("ray")
        strategies = importlib.import_module("ray.util.scheduling_strategies")
    except ImportError as exc:
        from attn_doctor.shell import own_pip

        raise UsageError(
            f"fleet --ray needs Ray, which is not importable here ({exc})",
            hint="install Ray (or check the nodes with Slurm: see docs/fleet.md):\n  "
            + own_pip("install", "attn-doctor[fleet]"),
        ) from exc
    return ray, strategies.NodeAffinitySchedulingStrategy


def gather_with_ray(*, address: str | None, timeout: float, deep: bool = False) -> list[NodeInput]:
    """Every alive node's ``check --json``, or why it could not be had.

    Uses the Ray connection this process already has, else ``ray.init(address)``.
    """
    ray, affinity = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UsageError(
                f"cannot connect to a Ray cluster at {address!r}: {exc}",
                hint="Run on a node of the cluster (ray start ...), or pass --ray-address.",
            ) from exc
    try:
        return _run_everywhere(ray, affinity, timeout=timeout, deep=deep)
    finally:
        if started_here:
            ray.shutdown()


def _run_everywhere(ray: Any, affinity: Any, *, timeout: float, deep: bool) -> list[NodeInput]:
    alive = sorted((n for n in ray.nodes() if n.get("Alive")), key=lambda n: str(n["NodeID"]))
    names = _node_names(alive)
    task = ray.remote(num_cpus=0, max_retries=0)(check_on_this_node)
    args = ["--deep"] if deep else []
    refs = [
        task.options(
            scheduling_strategy=affinity(node_id=node["NodeID"], soft=False),
            name="attn-doctor-check",
        ).remote(args, timeout)
        for node in alive
    ]
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout + SCHEDULING_GRACE_S)
    done = set(ready)
    result: list[NodeInput] = []
    for node, name, ref in zip(alive, names, refs, strict=True):
        source = f"ray:{node['NodeID']}"
        if ref not in done:
            ray.cancel(ref, force=True)
            result.append(
                NodeInput(
                    name=name,
                    source=source,
                    failure=f"no answer within {timeout + SCHEDULING_GRACE_S:g} s "
                    "(the node or its Ray worker hangs)",
                )
            )
            continue
        try:
            answer = ray.get(ref)
        except Exception as exc:  # RayTaskError, WorkerCrashedError, NodeDiedError...
            reason = _last_line(str(exc)) or type(exc).__name__
            result.append(NodeInput(name=name, source=source, failure=f"task failed: {reason}"))
            continue
        result.append(node_from_answer(answer, name=name, source=source, timeout=timeout))
    return result
