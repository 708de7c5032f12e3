"""The symptom knowledge base (``wheels_index/symptoms.toml``), loaded and validated once.

Each ``[[symptom]]`` entry is a failure users report upstream: the regular expressions that
recognise its message, the cause, the machine checks that confirm it, the fix as command
templates, and the upstream threads it was drawn from. ``parse_symptoms`` is pure and raises
``IndexDataError`` naming the bad entry; ``load_symptoms`` reads the shipped file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attn_doctor.backends import BACKEND_NAMES, BackendName
from attn_doctor.datafiles import Entry
from attn_doctor.errors import IndexDataError
from attn_doctor.explain.checks import capture_refs, check_problem
from attn_doctor.explain.fix import PLACEHOLDERS, placeholders_in

KB_FILE = "symptoms.toml"
KB_SCHEMA_VERSION = 1

_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_THREAD = re.compile(r"^https://github\.com/[\w.-]+/[\w.-]+/(?:issues|pull|discussions)/\d+$")
_KNOWN_KEYS = {
    "id",
    "title",
    "backends",
    "patterns",
    "requires",
    "supersedes",
    "cause",
    "checks",
    "fix",
    "fix_note",
    "threads",
    "verified",
    "note",
}


@dataclass(frozen=True, kw_only=True)
class Symptom:
    """One known failure: how to recognise it, why it happens, how to confirm and fix it."""

    id: str
    title: str
    patterns: tuple[re.Pattern[str], ...]
    """Any one matching a line of the text recognises the symptom."""
    requires: tuple[re.Pattern[str], ...] = ()
    """Each must also match some line of the text (context, e.g. "this is a pip build")."""
    supersedes: tuple[str, ...] = ()
    """Less specific entries this one replaces when both match."""
    cause: str
    checks: tuple[str, ...] = ()
    """Machine checks (see ``checks.CHECKS``); all must hold for the cause to be confirmed."""
    fix: tuple[str, ...] = ()
    """Command templates; ``<placeholder>`` is filled from this machine's facts."""
    fix_note: str | None = None
    backends: tuple[BackendName, ...] = ()
    threads: tuple[str, ...]
    """Upstream issue threads this entry was drawn from (its provenance)."""
    verified: bool
    """True when the message text, the cause and the fix were all seen in the threads."""
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class KnowledgeBase:
    """All symptoms, in file order."""

    symptoms: tuple[Symptom, ...]

    def get(self, symptom_id: str) -> Symptom | None:
        for s in self.symptoms:
            if s.id == symptom_id:
                return s
        return None


def _text(e: Entry, key: str, *, required: bool = True) -> str | None:
    if e.data.get(key) is None:
        if required:
            raise e.fail(key, "missing")
        return None
    value = e.str_(key)
    if not value.strip():
        raise e.fail(key, "must be a non-empty string")
    return value.strip()


def _texts(e: Entry, key: str, *, required: bool) -> tuple[str, ...]:
    if e.data.get(key) is None:
        if required:
            raise e.fail(key, "missing")
        return ()
    values = e.strs(key)
    if not all(v.strip() for v in values):
        raise e.fail(key, "must be a list of non-empty strings")
    if required and not values:
        raise e.fail(key, "must not be empty")
    return tuple(v.strip() if key not in {"patterns", "requires"} else v for v in values)


def _compile(e: Entry, key: str, texts: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    out = []
    for text in texts:
        try:
            out.append(re.compile(text, re.MULTILINE))
        except re.error as exc:
            raise e.fail(key, f"pattern {text!r} is not a valid regex: {exc}") from exc
        if out[-1].search(""):
            raise e.fail(key, f"pattern {text!r} matches the empty string")
    return tuple(out)


def parse_symptoms(data: dict[str, Any]) -> KnowledgeBase:
    """Validate decoded TOML into a ``KnowledgeBase`` with the shared typed reader
    (``datafiles.Entry``); errors name the file, the entry and the key."""
    version = data.get("schema_version")
    if version != KB_SCHEMA_VERSION:
        raise IndexDataError(
            f"{KB_FILE}: schema_version must be {KB_SCHEMA_VERSION}, got {version!r}"
        )
    raw = data.get("symptom")
    if not isinstance(raw, list) or not raw:
        raise IndexDataError(f"{KB_FILE}: expected one or more [[symptom]] tables")
    symptoms: list[Symptom] = []
    seen: set[str] = set()
    for n, item in enumerate(raw):
        ident = item.get("id") if isinstance(item, dict) else None
        label = f"symptom {ident!r}" if isinstance(ident, str) else f"symptom #{n + 1}"
        e = Entry(item, f"{KB_FILE}: {label}")
        if not isinstance(ident, str) or not _ID.match(ident):
            raise e.fail("id", "must be kebab-case (a-z, 0-9, '-')")
        if ident in seen:
            raise e.fail("id", "duplicate id")
        seen.add(ident)
        e.only(_KNOWN_KEYS)
        patterns = _compile(e, "patterns", _texts(e, "patterns", required=True))
        requires = _compile(e, "requires", _texts(e, "requires", required=False))
        group_names = {g for p in patterns for g in p.groupindex}
        checks = _texts(e, "checks", required=False)
        for check in checks:
            problem = check_problem(check)
            if problem:
                raise e.fail("checks", f"{check!r}: {problem}")
            missing = capture_refs(check) - group_names
            if missing:
                raise e.fail(
                    "checks", f"{check!r} uses {sorted(missing)[0]!r}, which no pattern captures"
                )
        fix = _texts(e, "fix", required=False)
        for cmd in fix:
            for ph in placeholders_in(cmd):
                if ph not in PLACEHOLDERS and not (ph.startswith("msg.") and ph[4:] in group_names):
                    raise e.fail("fix", f"{cmd!r} uses unknown placeholder <{ph}>")
        threads = _texts(e, "threads", required=True)
        for url in threads:
            if not _THREAD.match(url):
                raise e.fail("threads", f"{url!r} is not a GitHub issue/pull URL")
        backends = _texts(e, "backends", required=False)
        for b in backends:
            if b not in BACKEND_NAMES:
                raise e.fail("backends", f"unknown backend {b!r}")
        symptoms.append(
            Symptom(
                id=ident,
                title=_text(e, "title") or "",
                patterns=patterns,
                requires=requires,
                supersedes=_texts(e, "supersedes", required=False),
                cause=" ".join((_text(e, "cause") or "").split()),
                checks=checks,
                fix=fix,
                fix_note=_norm(_text(e, "fix_note", required=False)),
                backends=tuple(b for b in BACKEND_NAMES if b in backends),
                threads=threads,
                verified=e.bool_("verified"),
                note=_norm(_text(e, "note", required=False)),
            )
        )
    for s in symptoms:
        for other in s.supersedes:
            if other not in seen or other == s.id:
                raise IndexDataError(
                    f"{KB_FILE}: symptom {s.id!r}.supersedes: unknown entry {other!r}"
                )
    return KnowledgeBase(symptoms=tuple(symptoms))


def _norm(text: str | None) -> str | None:
    return None if text is None else " ".join(text.split())


def load_symptoms(directory: Path | None = None) -> KnowledgeBase:
    """Read and validate the knowledge base (the shipped one unless ``directory`` is given)."""
    from attn_doctor.datafiles import read_toml

    return parse_symptoms(read_toml(KB_FILE, directory))
