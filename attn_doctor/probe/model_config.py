"""The attention shapes of a model, read from its ``config.json`` (a folder, or a Hub id in the
local Hugging Face cache; never the network, never transformers), for ``check --deep --model``:
the ``--deep`` child then asks ``torch._fused_sdp_choice`` with the model's dtype, head dim and
heads, and a mask where the model uses one. Pure file reading.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from attn_doctor.errors import UsageError

_DTYPES = ("float16", "bfloat16", "float32")


@dataclass(frozen=True, kw_only=True)
class SdpaProbeInputs:
    """What the ``--deep`` child gives ``torch._fused_sdp_choice``; None: the child's default
    (bf16, fp16 below sm80, fp32 on the CPU; head dim 128; 16 heads; causal, no mask)."""

    dtype: str | None = None
    head_dim: int | None = None
    heads: int | None = None
    mask: bool = False
    """A boolean attention mask (sliding-window models pass one; SDPA's is_causal is then off)."""
    source: str = "assumed: no model given"

    def payload(self) -> dict[str, Any]:
        return asdict(self)


def describe(used: Mapping[str, Any], source: str) -> str:
    """``bfloat16, head dim 128, 16 heads, causal, no mask (assumed: no model given)``."""
    shape = [
        str(used.get("dtype")),
        f"head dim {used.get('head_dim')}",
        f"{used.get('heads')} heads",
        "a boolean mask" if used.get("mask") else "causal, no mask",
    ]
    return ", ".join(shape) + f" ({source})"


def _hub_config(model_id: str, environ: Mapping[str, str]) -> Path | None:
    if environ.get("HF_HUB_CACHE"):
        hub = Path(environ["HF_HUB_CACHE"])
    elif environ.get("HF_HOME"):
        hub = Path(environ["HF_HOME"]) / "hub"
    else:
        hub = Path(environ.get("HOME", "~")) / ".cache" / "huggingface" / "hub"
    snapshots = hub.expanduser() / f"models--{model_id.replace('/', '--')}" / "snapshots"
    found = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def read_model_inputs(model: str, environ: Mapping[str, str]) -> SdpaProbeInputs:
    """The SDPA inputs of ``model``: a folder (or its ``config.json``), else a Hub id found in
    the local cache. Raises ``UsageError`` when neither has a readable config."""
    path = Path(model).expanduser()
    config = path / "config.json" if path.is_dir() else path if path.is_file() else None
    if config is None:
        config = _hub_config(model, environ)
    if config is None:
        raise UsageError(
            f"--model {model}: no config.json there, and not in the local Hugging Face cache "
            "(check reads no network: download the model first, or pass its folder)"
        )
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"--model {model}: cannot read {config.name}: {exc}") from None
    text = data.get("text_config") if isinstance(data.get("text_config"), dict) else data
    heads = text.get("num_attention_heads")
    head_dim = text.get("head_dim")
    hidden = text.get("hidden_size")
    if not isinstance(head_dim, int) and isinstance(hidden, int) and isinstance(heads, int):
        head_dim = hidden // heads if heads else None
    dtype = data.get("dtype") or data.get("torch_dtype") or text.get("torch_dtype")
    window = text.get("sliding_window")
    uses_window = isinstance(window, int) and not isinstance(window, bool) and window > 0
    if text.get("use_sliding_window") is False:
        uses_window = False
    return SdpaProbeInputs(
        dtype=dtype if dtype in _DTYPES else None,
        head_dim=head_dim if isinstance(head_dim, int) and head_dim > 0 else None,
        heads=heads if isinstance(heads, int) and heads > 0 else None,
        mask=uses_window,
        source=f"from {model}'s config.json"
        + (": sliding window, so transformers passes a mask" if uses_window else ""),
    )
