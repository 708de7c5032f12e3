"""``attn-doctor index update`` against a local HTTP server on 127.0.0.1 that serves the package
index's responses recorded once (tests/data/index_update)."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from attn_doctor.cli import cli
from attn_doctor.facts import Environment
from attn_doctor.index import load_index
from attn_doctor.overlay import knowledge_line, read_overlay
from attn_doctor.resolve import plan_backend

DATA = Path(__file__).resolve().parents[1] / "data" / "index_update"
SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshots" / "h200-real.json"


class _Recorded(http.server.BaseHTTPRequestHandler):
    broken = False

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        parts = [urllib.parse.unquote(p) for p in path.split("/") if p]
        body: bytes | None = None
        kind = "application/octet-stream"
        if self.broken:
            body, kind = b"<html>not the simple API</html>", "text/html"
        elif len(parts) == 2 and parts[0] == "simple":
            page = DATA / "simple" / f"{parts[1]}.json"
            if page.is_file():
                body, kind = page.read_bytes(), "application/vnd.pypi.simple.v1+json"
        elif parts[:1] == ["gh"] and parts[-1] == "releases":
            body = (DATA / "handmade" / "github-releases.json").read_bytes()
            kind = "application/json"
        elif parts == ["links"]:
            body, kind = (DATA / "handmade" / "find-links.html").read_bytes(), "text/html"
        elif len(parts) == 2 and parts[0] == "files":
            file = DATA / "files" / parts[1]
            handmade = DATA / "handmade" / "files" / parts[1]
            if file.is_file():
                body = file.read_bytes()
            elif handmade.is_file():
                body = handmade.read_bytes()
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def index_url() -> Iterator[str]:
    yield from _serve(_Recorded)


@pytest.fixture
def broken_url() -> Iterator[str]:
    yield from _serve(type("Broken", (_Recorded,), {"broken": True}))


@pytest.fixture
def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / ".cache"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    return tmp_path


def _newest_recorded() -> str:
    from packaging.version import Version

    page = json.loads((DATA / "simple" / "flash-attn-4.json").read_text())
    return str(max(page["versions"], key=Version))


def test_after_index_update_flash_attn_4_is_the_newest_served(
    fresh_home: Path, index_url: str
) -> None:
    base = index_url.removesuffix("/simple")
    args = ["--github-api", f"{base}/gh", "--find-links", f"{base}/links"]
    res = CliRunner().invoke(cli, ["index", "update", "--index-url", index_url, *args])
    assert res.exit_code == 0, res.output
    assert "overlay written: flash_attn_4.toml, listed_wheels.toml" in res.output
    overlay = read_overlay({"XDG_CACHE_HOME": str(fresh_home / ".cache")})
    assert overlay is not None
    assert [s["status"] for s in overlay["sources"]] == ["ok"] * 4
    assert [s["trust"] for s in overlay["sources"]] == [
        "official",
        "official",
        "community",
        "third-party index",
    ]
    fa = overlay["listed"]["Dao-AILab/flash-attention"][0]
    assert fa["assets"][0]["sha256"] == "1" * 64
    # Only the wheels whose METADATA could be read and declares a torch.
    assert overlay["listed"][f"{base}/links"] == [
        "flash_attn-2.8.2+cu130torch2.14-cp312-cp312-linux_x86_64.whl",
        "flash_attn-2.8.3+cu128torch2.11-cp312-cp312-linux_x86_64.whl",
        "flash_attn-2.8.3+cu130-cp312-cp312-linux_x86_64.whl",
    ]
    links = next(s for s in overlay["sources"] if s["name"] == f"{base}/links")
    assert links["wheels"] == 3
    assert links["note"] == "1 wheel(s) without readable METADATA left out"
    assert overlay["newest"]["flash-attn-4"] == _newest_recorded() == "4.0.0b40"
    env = Environment.from_json(SNAPSHOT.read_text())
    plan = plan_backend(env, load_index(), "flash_attn_4")
    best = plan.candidates[0]
    assert best.version == _newest_recorded()
    assert best.sha256 is not None
    line = knowledge_line({"XDG_CACHE_HOME": str(fresh_home / ".cache")})
    assert "index update of" in line
    assert "0 days old" in line or "day" in line


def test_a_failing_source_keeps_the_bundled_data_and_says_so(
    fresh_home: Path, broken_url: str
) -> None:
    skip = ["--github-api", "none", "--find-links", "none"]
    res = CliRunner().invoke(cli, ["index", "update", "--index-url", broken_url, "--json", *skip])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    result = doc["result"]
    assert result["directory"] is None
    assert result["sources"][0]["status"].startswith("failed")
    assert "bundled data stays in use" in result["notes"][0]
    assert read_overlay({"XDG_CACHE_HOME": str(fresh_home / ".cache")}) is None


def test_unreachable_index_keeps_the_bundled_data(fresh_home: Path) -> None:
    dead = "http://127.0.0.1:9"
    dead_args = ["--github-api", dead, "--find-links", f"{dead}/links"]
    res = CliRunner().invoke(cli, ["index", "update", "--index-url", f"{dead}/simple", *dead_args])
    assert res.exit_code == 0, res.output
    assert res.output.count("unreachable") == 4
    assert "the data bundled with attn-doctor" in res.output


def test_offline_reads_nothing(fresh_home: Path) -> None:
    res = CliRunner().invoke(cli, ["index", "update", "--offline"])
    assert res.exit_code == 0
    assert "not read (offline)" in res.output


def test_torch_2_14_gets_flash_attn_2_from_a_listed_wheel_that_declares_it(
    fresh_home: Path, index_url: str
) -> None:
    """The bundled data has no flash-attn 2 wheel for torch 2.14; after `index update`, the
    find-links wheel whose METADATA declares `torch ==2.14.*` is planned (not the one whose
    name says torch2.14 but whose METADATA declares 2.13), with its sha256 and its source."""
    env = _h200_with_torch("2.14.0")
    bundled = plan_backend(env, load_index(), "flash_attn_2")
    assert all(c.source == "source-build" for c in bundled.candidates)
    base = index_url.removesuffix("/simple")
    args = ["--github-api", "none", "--find-links", f"{base}/links"]
    res = CliRunner().invoke(cli, ["index", "update", "--index-url", index_url, *args])
    assert res.exit_code == 0, res.output
    plan = plan_backend(env, load_index(), "flash_attn_2")
    prebuilt = [c for c in plan.candidates if c.source != "source-build"]
    assert [c.filename for c in prebuilt] == [
        "flash_attn-2.8.3+cu130-cp312-cp312-linux_x86_64.whl"
    ]
    best = prebuilt[0]
    assert best.trust == "third-party index"
    assert best.sha256 == "3" * 64
    assert f"listed by {base}/links" in best.reason
    assert "its METADATA declares torch==2.14.*" in best.reason
    near = " ".join(r.reason for r in plan.rejections)
    assert "flash_attn-2.8.2+cu130torch2.14" not in [c.filename for c in prebuilt]
    assert "torch==2.13.*" in near or len(near) > 0


def _h200_with_torch(version: str) -> Environment:
    data = json.loads(SNAPSHOT.read_text())
    data["torch"]["version"] = version
    return Environment.from_json(json.dumps(data))
