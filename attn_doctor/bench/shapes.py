"""Benchmark shapes: flash-attn's published benchmark grid on GPU, a small grid on CPU.

The GPU defaults copy ``benchmarks/benchmark_flash_attention.py`` of Dao-AILab/flash-attention
(read at commit 0469c727) so that the figures can be set beside upstream's::

    bs_seqlen_vals = [(32, 512), (16, 1024), (8, 2048), (4, 4096), (2, 8192), (1, 16384)]
    causal_vals = [False, True]
    headdim_vals = [64, 128]
    dim = 2048                  # nheads = dim // headdim
    dtype = torch.float16

i.e. batch × seqlen = 16k tokens, model width 2048 (32 heads of 64 or 16 heads of 128).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

DType = Literal["bf16", "fp16", "fp32"]
Device = Literal["cpu", "cuda"]

FLASH_ATTN_DIM = 2048
"""Model width in flash-attn's benchmark (``dim = 2048``); heads = dim // head_dim."""
FLASH_ATTN_TOKENS = 16384
"""batch × seqlen in flash-attn's benchmark: (32, 512) … (1, 16384)."""
FLASH_ATTN_SEQLENS: tuple[int, ...] = (512, 1024, 2048, 4096, 8192, 16384)
FLASH_ATTN_HEAD_DIMS: tuple[int, ...] = (64, 128)
FLASH_ATTN_DTYPE: DType = "fp16"

CPU_SEQLENS: tuple[int, ...] = (128, 256, 512, 1024)
CPU_BATCH = 1
CPU_HEADS = 8
CPU_HEAD_DIM = 64
CPU_DTYPES: tuple[DType, ...] = ("fp32", "bf16")


@dataclass(frozen=True, kw_only=True)
class BenchShape:
    """One attention problem: q is (batch, seqlen, heads, head_dim); k, v have kv_heads."""

    batch: int
    seqlen: int
    heads: int
    kv_heads: int
    head_dim: int
    causal: bool
    dtype: DType

    @property
    def label(self) -> str:
        kv = f"/{self.kv_heads}kv" if self.kv_heads != self.heads else ""
        mask = "causal" if self.causal else "full"
        return (
            f"B{self.batch} S{self.seqlen} H{self.heads}{kv} D{self.head_dim} {mask} {self.dtype}"
        )

    @property
    def group(self) -> tuple[str, int, int, int, bool]:
        """Everything but batch and seqlen: the shapes one sweep line is drawn through."""
        return (self.dtype, self.heads, self.kv_heads, self.head_dim, self.causal)


def parse_seqlens(text: str) -> tuple[int, ...]:
    """``"512,1k,2k"`` -> (512, 1024, 2048). Raises ``ValueError`` naming the bad item."""
    out: list[int] = []
    for raw in text.split(","):
        item = raw.strip().lower()
        if not item:
            continue
        mult = 1
        if item.endswith("k"):
            mult, item = 1024, item[:-1]
        try:
            value = int(item) * mult
        except ValueError:
            raise ValueError(f"not a sequence length: {raw.strip()!r}") from None
        if value < 1:
            raise ValueError(f"sequence length must be >= 1: {raw.strip()!r}")
        out.append(value)
    if not out:
        raise ValueError("no sequence lengths given")
    return tuple(out)


def build_shapes(
    *,
    device: Device,
    seqlens: Sequence[int] | None = None,
    batch: int | None = None,
    heads: int | None = None,
    kv_heads: int | None = None,
    head_dims: Sequence[int] | None = None,
    dtypes: Sequence[DType] | None = None,
    causal: bool | None = None,
) -> tuple[BenchShape, ...]:
    """The grid to run. Anything not given takes the device's default:

    - cuda: flash-attn's grid — seqlens 512…16k, batch = 16384 // seqlen, head dims 64 and 128,
      heads = 2048 // head_dim, fp16, causal and non-causal;
    - cpu: seqlens 128…1024, batch 1, 8 heads of 64, fp32 and bf16, causal and non-causal.

    ``kv_heads`` defaults to ``heads`` (no grouped-query attention) and must divide it.
    """
    if device == "cuda":
        seqlens = tuple(seqlens) if seqlens else FLASH_ATTN_SEQLENS
        head_dims = tuple(head_dims) if head_dims else FLASH_ATTN_HEAD_DIMS
        dtypes = tuple(dtypes) if dtypes else (FLASH_ATTN_DTYPE,)
    else:
        seqlens = tuple(seqlens) if seqlens else CPU_SEQLENS
        head_dims = tuple(head_dims) if head_dims else (CPU_HEAD_DIM,)
        dtypes = tuple(dtypes) if dtypes else CPU_DTYPES
    causals = (False, True) if causal is None else (causal,)
    shapes: list[BenchShape] = []
    for dtype in dtypes:
        for is_causal in causals:
            for head_dim in head_dims:
                if heads is not None:
                    n_heads = heads
                elif device == "cuda":
                    n_heads = max(1, FLASH_ATTN_DIM // head_dim)
                else:
                    n_heads = CPU_HEADS
                n_kv = n_heads if kv_heads is None else kv_heads
                if n_kv < 1 or n_heads % n_kv:
                    raise ValueError(f"kv heads ({n_kv}) must divide query heads ({n_heads})")
                for seqlen in seqlens:
                    if batch is not None:
                        n_batch = batch
                    elif device == "cuda":
                        n_batch = max(1, FLASH_ATTN_TOKENS // seqlen)
                    else:
                        n_batch = CPU_BATCH
                    shapes.append(
                        BenchShape(
                            batch=n_batch,
                            seqlen=seqlen,
                            heads=n_heads,
                            kv_heads=n_kv,
                            head_dim=head_dim,
                            causal=is_causal,
                            dtype=dtype,
                        )
                    )
    return tuple(shapes)
