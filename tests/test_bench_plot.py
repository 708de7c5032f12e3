"""``--plot``: a real PNG, or a clear usage error without matplotlib."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from attn_doctor.bench import plot
from attn_doctor.errors import UsageError
from tests.bench_data import result, sweep


def test_writes_a_valid_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib (the 'plot' extra) is not installed")
    import matplotlib.image

    res = result(
        sweep("sdpa_flash", {512: 0.5, 1024: 1.6, 2048: 6.0}),
        sweep("eager", {512: 2.0, 1024: 8.0, 2048: None}),
    )
    out = plot.write_plot(res, tmp_path / "bench.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(out)
    assert image.shape[0] > 100
    assert image.shape[1] > 100


def test_missing_matplotlib_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "matplotlib" else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(UsageError, match="matplotlib") as info:
        plot.require_matplotlib()
    assert info.value.hint is not None
    assert "attn-doctor[plot]" in info.value.hint


def test_nothing_to_draw(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib (the 'plot' extra) is not installed")
    with pytest.raises(UsageError, match="nothing to draw"):
        plot.write_plot(result(), tmp_path / "x.png")
