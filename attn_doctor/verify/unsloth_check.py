"""unsloth's check: its FastLanguageModel on a tiny saved Llama, vs plain transformers.

The model, inputs and comparison are the model check's (``attn_doctor.verify.model_check``);
``run_unsloth_check`` runs in the child process.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import tempfile
from dataclasses import dataclass
from typing import Any

from attn_doctor.verify.model_check import (
    ModelStatus,
    compare_with_eager,
    forward_backward,
    tiny_config,
    tiny_inputs,
)


@dataclass(frozen=True, kw_only=True)
class UnslothReport:
    """unsloth's FastLanguageModel on a tiny saved model, vs plain transformers."""

    status: ModelStatus
    reason: str | None
    attention_path: str | None = None
    logits_max_diff: float | None = None
    logits_atol: float | None = None
    grad_finite: bool | None = None


def run_unsloth_check(*, device: str = "cuda", seed: int = 0) -> UnslothReport:
    """Child side: save a tiny random Llama, load it with unsloth, forward+backward, compare.

    Needs unsloth and a CUDA device; otherwise skipped with the reason.
    """
    torch: Any = importlib.import_module("torch")
    if not device.startswith("cuda") or not torch.cuda.is_available():
        return UnslothReport(status="skipped", reason="unsloth needs a CUDA device")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local directory: nothing to download
    try:
        # unsloth must be imported before transformers to patch it.
        unsloth: Any = importlib.import_module("unsloth")
    except Exception as exc:
        return UnslothReport(
            status="skipped", reason=f"import unsloth failed: {type(exc).__name__}: {exc}"[:300]
        )
    transformers: Any = importlib.import_module("transformers")
    config = tiny_config("llama")
    torch.manual_seed(seed)
    plain = transformers.LlamaForCausalLM(config).to(device=device, dtype=torch.bfloat16)
    ids, mask, labels = tiny_inputs(config.vocab_size, device, seed=seed)
    try:
        # Before unsloth loads anything: from_pretrained patches the Llama classes in place.
        base = forward_backward(plain, ids, mask, labels)
    except Exception as exc:
        return UnslothReport(
            status="error",
            reason=f"plain transformers forward/backward failed: {type(exc).__name__}: {exc}"[:300],
        )
    with tempfile.TemporaryDirectory(prefix="attn-doctor-unsloth-") as tmp:
        plain.save_pretrained(tmp)
        save_tiny_tokenizer(tmp, config.vocab_size)
        try:
            fast, _tokenizer = unsloth.FastLanguageModel.from_pretrained(
                model_name=tmp,
                max_seq_length=64,
                dtype=torch.bfloat16,
                load_in_4bit=False,
            )
        except Exception as exc:
            return UnslothReport(
                status="error",
                reason=f"FastLanguageModel.from_pretrained failed: {type(exc).__name__}: {exc}"[
                    :300
                ],
            )
        attention_path = _unsloth_attention_path(fast)
        try:
            got = forward_backward(fast, ids, mask, labels)
        except Exception as exc:
            return UnslothReport(
                status="error",
                reason=f"forward/backward failed: {type(exc).__name__}: {exc}"[:300],
                attention_path=attention_path,
            )
    result = compare_with_eager(
        "llama", "unsloth", got, base, mask=mask, dtype="bfloat16", device=device
    )
    return UnslothReport(
        status=result.status,
        reason=result.reason,
        attention_path=attention_path,
        logits_max_diff=result.logits_max_diff,
        logits_atol=result.logits_atol,
        grad_finite=bool(math.isfinite(result.grad_max_diff or 0.0)),
    )


def save_tiny_tokenizer(directory: str, vocab_size: int) -> None:
    """A word-level tokenizer of ``vocab_size`` made-up words, saved offline next to a model.

    ``FastLanguageModel.from_pretrained`` loads a tokenizer with the model; nothing may be
    downloaded, so one is made here (ids 0-2 are <unk>, <s>, </s>).
    """
    tokenizers: Any = importlib.import_module("tokenizers")
    transformers: Any = importlib.import_module("transformers")
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab.update({f"w{i}": i for i in range(3, vocab_size)})
    # Token names, not secrets (ruff's S106 reads "*_token" arguments as passwords).
    special = {"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "</s>"}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, special["unk_token"]))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, **special)
    fast.save_pretrained(directory)


def _unsloth_attention_path(model: Any) -> str:
    """What unsloth chose: transformers' attn_implementation and unsloth's own kernel flags
    (``HAS_FLASH_ATTENTION`` and ``xformers`` in ``unsloth.models._utils``)."""
    parts = [f"attn_implementation={getattr(model.config, '_attn_implementation', None)}"]
    try:
        utils: Any = importlib.import_module("unsloth.models._utils")
    except Exception:
        return parts[0]
    parts.append(f"HAS_FLASH_ATTENTION={getattr(utils, 'HAS_FLASH_ATTENTION', None)}")
    parts.append(f"xformers={'yes' if getattr(utils, 'xformers', None) is not None else 'no'}")
    return ", ".join(parts)


def unsloth_report_json(report: UnslothReport) -> str:
    """One line of JSON (the child's answer)."""
    from attn_doctor.facts import encode

    return json.dumps(encode(report), allow_nan=False, sort_keys=True)
