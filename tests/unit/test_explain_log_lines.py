"""A message reads the same however it reached the user: behind a launcher's or logger's line
prefix, HTML-escaped by a web page, escaped inside a JSON log line, or quoted in a reply.

Each case takes one real-shaped message, checks the bare message's answer, then the same
message dressed as it arrives from that source; the near misses check that a prefix-like text
which is part of the message is kept."""

from __future__ import annotations

import html
import json

import pytest

from attn_doctor.explain import explain_text
from attn_doctor.explain.evidence import extract_facts, normalise
from attn_doctor.explain.match import split_lines

_FLASH_SYMBOL = (
    "Traceback (most recent call last):\n"
    '  File "/opt/venv/lib/python3.10/site-packages/flash_attn/flash_attn_interface.py", '
    "line 10, in <module>\n"
    "    import flash_attn_2_cuda as flash_attn_gpu\n"
    "ImportError: /opt/venv/lib/python3.10/site-packages/flash_attn_2_cuda.cpython-310-"
    "x86_64-linux-gnu.so: undefined symbol: _ZN3c104cuda9SetDeviceEi"
)


def _top(text: str) -> str | None:
    result = explain_text(text, None)
    return result.explanations[0].match.symptom_id if result.explanations else None


def _each_line(prefix: str, text: str) -> str:
    return "\n".join(prefix + line for line in text.split("\n"))


_DRESSED = {
    "torchrun rank": lambda t: _each_line("[rank0]: ", t),
    "torchrun tee": lambda t: _each_line("[default3]:", t),
    "mpirun": lambda t: _each_line("[1,0]<stderr>:", t),
    "ray worker": lambda t: _each_line("(RayWorkerWrapper pid=4121, ip=10.0.0.7) ", t),
    "vllm worker": lambda t: _each_line("(VllmWorker rank=1 pid=77) ", t),
    "logging": lambda t: _each_line("2025-03-26 11:03:17,412 - root - ERROR - ", t),
    "loguru": lambda t: _each_line("2025-03-26 11:03:17.412 | ERROR    | __main__:run:88 - ", t),
    "vllm logger": lambda t: _each_line("ERROR 03-26 11:03:17 [engine.py:160] ", t),
    "vllm logger, old": lambda t: _each_line("ERROR 03-26 11:03:17 engine.py:160] ", t),
    "sglang": lambda t: _each_line("[2025-03-26 11:03:17 TP0] ", t),
    "ci runner": lambda t: _each_line("2025-03-26T11:03:17.4123456Z ", t),
    "journald": lambda t: _each_line("Mar 26 11:03:17 node7 python[2211]: ", t),
    "compose": lambda t: _each_line("worker-1  | ", t),
    "pytest": lambda t: _each_line("E       ", t),
    "reply quote": lambda t: _each_line("> ", t),
    "nested quote": lambda t: _each_line("> > ", t),
    "web page": html.escape,
    "json log": lambda t: json.dumps({"level": "error", "msg": t}),
}


@pytest.mark.parametrize("source", sorted(_DRESSED))
def test_a_message_reads_the_same_from_any_source(source: str) -> None:
    bare = _top(_FLASH_SYMBOL)
    assert bare is not None
    assert _top(_DRESSED[source](_FLASH_SYMBOL)) == bare


@pytest.mark.parametrize("source", ["torchrun rank", "logging", "ray worker", "json log"])
def test_facts_are_read_through_the_prefix(source: str) -> None:
    facts = extract_facts(_DRESSED[source](_FLASH_SYMBOL))
    assert facts.python == "3.10"
    assert any("flash_attn_2_cuda" in line for line in facts.lines)


def test_prefixes_are_removed_and_messages_kept() -> None:
    lines = split_lines(
        "[rank0]: FATAL: FlashAttention requires building with sm version sm80-sm90\n"
        "2024-05-01 12:00:00,123 - ERROR - FATAL: kept\n"
        "flash-attn  | 2.5.8\n"
        ">>> import flash_attn\n"
        "Error: nothing before it"
    )
    assert lines == [
        "FATAL: FlashAttention requires building with sm version sm80-sm90",
        "FATAL: kept",  # the level after the timestamp goes, the message's own word stays
        "flash-attn  | 2.5.8",  # a table row is not a container's name
        "import flash_attn",
        "Error: nothing before it",
    ]


def test_html_is_unescaped_only_when_escaped() -> None:
    assert split_lines("a &gt; b &quot;c&quot; &#39;d&#39;") == ["a > b \"c\" 'd'"]
    assert split_lines("R&D & co") == ["R&D & co"]


def test_a_windows_path_is_not_an_escaped_line_break() -> None:
    path = r"C:\ComfyUI\python_embeded\Lib\site-packages\nvidia\cudnn\bin\cudnn64_9.dll"
    assert split_lines(path) == [path]


def test_an_escaped_traceback_is_laid_out() -> None:
    line = json.dumps(
        {"msg": 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: v'}
    )
    assert split_lines(line)[-2:] == ['  File "x.py", line 1', 'ValueError: v"}']


def test_a_frame_header_is_not_joined_to_its_source_line() -> None:
    lines = normalise(
        '  File "/srv/app/models/attention.py", line 112, in flash_attention\n'
        "    assert FLASH_ATTN_2_AVAILABLE\n"
        "AssertionError"
    )
    assert lines[0].endswith("in flash_attention")
    assert lines[1].strip() == "assert FLASH_ATTN_2_AVAILABLE"


def test_a_launcher_prefix_does_not_hide_an_availability_assert() -> None:
    text = (
        '  File "/srv/wan/modules/attention.py", line 112, in flash_attention\n'
        "[rank0]:     assert FLASH_ATTN_2_AVAILABLE\n"
        "[rank0]:            ^^^^^^^^^^^^^^^^^^^^^^\n"
        "[rank0]: AssertionError"
    )
    assert extract_facts(text).availability_asserts == ("FLASH_ATTN_2_AVAILABLE",)


def test_a_notice_keeps_its_level() -> None:
    assert split_lines("INFO 05-03 20:21:10 [sampler.py:44] FlashInfer sampling is disabled") == [
        "INFO: FlashInfer sampling is disabled"
    ]
    assert split_lines("2025-01-01 10:00:00 | WARNING | x:y:1 - sageattn not installed") == [
        "WARNING: sageattn not installed"
    ]
    # a notice behind a launcher's prefix is still a notice, answered as harmless
    note = "[rank0]: 2025-01-01 10:00:00,1 - app - WARNING - xformers not installed, using sdpa"
    (answer,) = explain_text(note, None).explanations
    assert answer.harmless
    # the same words at ERROR level are not a notice
    error = note.replace("WARNING", "ERROR")
    assert not any(e.harmless for e in explain_text(error, None).explanations)
