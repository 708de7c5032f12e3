"""Property tests: every reader of a file a user or a crash leaves behind, fed random bytes
and random JSON shapes.

Each must end in a clean error of its documented type (mapped to exit 2), or in the cache
being ignored (and rebuilt on the next write); never in another exception. The readers:
the snapshot (``Environment.from_json``, ``check --snapshot``'s ``snapshot.load_snapshot``), the
install journal, the bench cache, the runtime import cache, and ``explain --log``.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attn_doctor.bench.cache import load_bench_result, load_cached_result, save_bench_result
from attn_doctor.commands.explain import read_input
from attn_doctor.errors import SnapshotError, UsageError
from attn_doctor.facts import Environment
from attn_doctor.install.journal import Journal, journal_path, read_journal, write_journal
from attn_doctor.install.state import EnvState, InstalledDist
from attn_doctor.loadtime import importcheck
from attn_doctor.snapshot import load_snapshot
from tests.bench_data import result, sweep

from .conftest import SNAPSHOTS

E = TypeVar("E", bound=BaseException)

# Modest counts: the suite runs on 2-core machines. No example database in the work tree.
FAST = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
"""Random JSON values of any shape (Infinity and NaN, which json.dumps would write, are in RAW)."""

RAW = st.one_of(
    st.binary(max_size=400),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.integers(min_value=1, max_value=5000).map(lambda n: b"[" * n),  # deep nesting
    st.sampled_from([b"", b"\xef\xbb\xbf{}", b"1e999", b"NaN", b'{"a": 1e999}', b"\x00" * 64]),
)
"""Random file contents: bytes, JSON of any shape, deep nesting, a few classic traps."""


def raised(fn: Callable[[], object], expected: type[E]) -> E | None:
    """The ``expected`` exception ``fn`` raised, or None; any other exception propagates
    (and fails the property)."""
    try:
        fn()
    except expected as exc:
        return exc
    return None


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path inside a JSON document."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _replace_at(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


@st.composite
def mutated(draw: st.DrawFn, doc: Any) -> Any:
    """A valid document with one value anywhere in it replaced by random JSON."""
    paths = _paths(doc)
    path = draw(st.sampled_from(paths))
    return _replace_at(doc, path, draw(JSON))


SNAPSHOT_DOC = json.loads((SNAPSHOTS / "h100-linux-recent-torch.json").read_text())


# --- the snapshot -----------------------------------------------------------------------


@pytest.mark.slow
@FAST
@given(data=RAW)
def test_snapshot_bytes_give_a_snapshot_error(data: bytes) -> None:
    exc = raised(lambda: Environment.from_json(data), SnapshotError)
    if exc is not None:
        assert exc.exit_code == 2
        assert "\n" not in exc.message


@FAST
@given(doc=mutated(SNAPSHOT_DOC))
def test_snapshot_with_any_value_replaced_gives_a_snapshot_error(doc: Any) -> None:
    loaded: list[Environment] = []
    exc = raised(lambda: loaded.append(Environment.from_dict(doc)), SnapshotError)
    if exc is not None:
        assert exc.message.startswith("snapshot")
        return
    assert Environment.from_json(loaded[0].to_json()) == loaded[0]  # loads, saves, loads


@FAST
@given(data=RAW)
def test_snapshot_file_gives_a_snapshot_error_naming_the_file(
    tmp_path: Path, data: bytes
) -> None:
    path = tmp_path / "snap.json"
    path.write_bytes(data)
    exc = raised(lambda: load_snapshot(path), SnapshotError)
    if exc is not None:
        assert str(path) in exc.message
        assert "\n" not in exc.message


# --- the install journal ----------------------------------------------------------------


def _journal() -> Journal:
    prior = EnvState(
        python="/venv/bin/python",
        prefix="/venv",
        purelib="/venv/lib/site",
        distributions=(InstalledDist(name="torch", version="2.8.0", display_name="torch"),),
    )
    return Journal(pid=7, started_at="2026-11-29T10:00:00+00:00", step="installing",
                   backend="xformers", requirement="xformers==0.0.33", prior=prior)  # fmt: skip


JOURNAL_DOC = _journal().to_dict()


@FAST
@given(data=RAW)
def test_journal_bytes_give_a_usage_error(tmp_path: Path, data: bytes) -> None:
    journal_path(tmp_path).write_bytes(data)
    exc = raised(lambda: read_journal(tmp_path), UsageError)
    if exc is not None:
        assert str(journal_path(tmp_path)) in exc.message
        assert exc.exit_code == 2


@pytest.mark.slow
@FAST
@given(doc=mutated(JOURNAL_DOC))
def test_journal_with_any_value_replaced_reads_or_gives_a_usage_error(
    tmp_path: Path, doc: Any
) -> None:
    journal_path(tmp_path).write_text(json.dumps(doc))
    read: list[Journal | None] = []
    exc = raised(lambda: read.append(read_journal(tmp_path)), UsageError)
    if exc is not None:
        assert "unreadable" in exc.message
        return
    journal = read[0]
    assert journal is not None
    write_journal(tmp_path, journal)  # what reads, writes again
    assert read_journal(tmp_path) == journal


# --- the bench cache --------------------------------------------------------------------

BENCH = result(sweep("sdpa_flash", {1024: 1.0, 4096: 9.0}))


def _bench_env() -> Environment:
    from attn_doctor.facts import GpuFacts, HostFacts, PythonFacts, TorchFacts

    return Environment(
        host=HostFacts(os="linux"),
        python=PythonFacts(version="3.12.3", implementation="cpython"),
        gpus=(GpuFacts(index=0, vendor="nvidia", name=BENCH.device_name),),
        torch=TorchFacts(version=BENCH.torch_version, build="cuda"),
    )


@pytest.mark.slow
@FAST
@given(data=RAW)
def test_bench_cache_bytes_are_ignored_and_rebuilt(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bench.json"
    path.write_bytes(data)
    assert load_bench_result(_bench_env(), path) is None
    save_bench_result(BENCH, path)  # the next bench run writes a good cache over it
    assert load_bench_result(_bench_env(), path) == BENCH


@pytest.mark.slow
@FAST
@given(entry=mutated(BENCH.to_dict()))
def test_bench_cache_entry_of_any_shape_reads_or_is_ignored(tmp_path: Path, entry: Any) -> None:
    path = tmp_path / "bench.json"
    doc = {"schema": "attn-doctor/bench-cache", "schema_version": 1,
           "results": {BENCH.cache_key: entry}}  # fmt: skip
    path.write_text(json.dumps(doc))
    loaded = load_cached_result(BENCH.cache_key, path)
    assert loaded is None or loaded.cache_key is not None


# --- the runtime import cache -----------------------------------------------------------

KEY = {"module": "m", "python": "x"}
DIGEST = "0" * 64


@pytest.mark.slow
@FAST
@given(data=RAW)
def test_import_cache_bytes_read_as_empty(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "imports.json"
    path.write_bytes(data)
    assert importcheck._lookup(path, DIGEST, KEY, "m") is None


@pytest.mark.slow
@FAST
@given(entry=JSON, seconds=JSON)
def test_import_cache_entry_of_any_shape_reads_or_is_ignored(
    tmp_path: Path, entry: Any, seconds: Any
) -> None:
    path = tmp_path / "imports.json"
    good = {"key": KEY, "result": {"module": "m", "status": "ok", "seconds": seconds}}
    path.write_text(json.dumps({"schema": importcheck.CACHE_SCHEMA,
                                "entries": {DIGEST: good, "1" * 64: entry}}))  # fmt: skip
    found = importcheck._lookup(path, DIGEST, KEY, "m")
    assert found is not None
    assert found.status == "ok"
    assert found.seconds is None or found.seconds >= 0
    assert importcheck._lookup(path, "1" * 64, KEY, "m") is None or isinstance(entry, dict)


# --- explain --log ----------------------------------------------------------------------


@pytest.mark.slow
@FAST
@given(data=st.binary(max_size=2000))
def test_explain_log_of_any_bytes_reads_as_text(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "build.log"
    path.write_bytes(data)
    got = read_input((), path, io.StringIO())
    assert got.source == "log"
    assert isinstance(got.text, str)
    assert got.read_bytes <= got.total_bytes


def test_explain_log_that_cannot_be_read_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=str(tmp_path)):
        read_input((), tmp_path, io.StringIO())  # a directory


# --- the runtime API over corrupt caches -----------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [bytes(range(256)), b"[" * 100_000, b'{"schema": "attn-doctor/imports", "entries": [1]}'],
    ids=["binary", "nested", "wrong-shape"],
)
@pytest.mark.functional
def test_corrupt_caches_never_break_model_loading(tmp_path: Path, garbage: bytes) -> None:
    pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    from attn_doctor.facts import GpuFacts
    from attn_doctor.loadtime import best_attn_implementation, load_kwargs
    from attn_doctor.loadtime.select import clear_caches
    from tests.runtime_helpers import clean_environ, plant

    site = tmp_path / "site"
    plant(site, "flash_attn", dist="flash-attn", version="2.8.3")
    (site / "flash_attn_2_cuda.py").write_text("")
    cache = tmp_path / "cache"
    env = clean_environ(cache, site)
    for name in ("imports.json", "bench.json"):
        (cache / "attn-doctor").mkdir(parents=True, exist_ok=True)
        (cache / "attn-doctor" / name).write_bytes(garbage)
    a100 = GpuFacts(index=0, vendor="nvidia", name="NVIDIA A100", compute_capability="8.0")
    clear_caches()
    try:
        assert best_attn_implementation(device=a100, dtype="bf16", environ=env) == (
            "flash_attention_2"
        )
        kwargs = load_kwargs(device=a100, environ=env)
        assert kwargs["attn_implementation"] == "flash_attention_2"
        assert kwargs[next(k for k in kwargs if k != "attn_implementation")] is torch.bfloat16
    finally:
        clear_caches()
    # The import cache was rebuilt: valid JSON now, holding the answer just found.
    rebuilt = json.loads((cache / "attn-doctor" / "imports.json").read_text())
    assert rebuilt["schema"] == importcheck.CACHE_SCHEMA
    assert any(e["result"]["status"] == "ok" for e in rebuilt["entries"].values())
