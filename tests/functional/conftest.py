"""Functional fixtures: the integration tier's throw-away venv and wheelhouse, and a local
HTTP server on 127.0.0.1 that serves a folder."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import base_venv, venv, wheelhouse, wheelhouses

__all__ = ["base_venv", "serve_dir", "venv", "wheelhouse", "wheelhouses"]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def serve_dir(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder and the ``http://127.0.0.1:PORT`` URL that serves it (for this test only)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
