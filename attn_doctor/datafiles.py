"""Locate and read the data files in ``wheels_index/`` (shipped inside the package).

In a built wheel the directory is ``attn_doctor/wheels_index``; in a source checkout or an
editable install it is ``wheels_index/`` at the repository root. Exactly one function reads
these files, and one typed reader (``Entry``) validates what every loader takes from them,
raising ``IndexDataError`` naming the file, the entry and the key.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any, overload

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from attn_doctor.errors import IndexDataError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


def index_dir() -> Path:
    """The directory holding the index data files: the overlay ``attn-doctor index update``
    wrote for this attn-doctor version (``$XDG_CACHE_HOME/attn-doctor/index``), else the
    bundled data."""
    import os

    from attn_doctor.index.overlay import overlay_path, read_overlay

    if read_overlay(os.environ) is not None:
        return overlay_path(os.environ)
    return bundled_index_dir()


def bundled_index_dir() -> Path:
    """The data shipped with attn-doctor."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "wheels_index", here.parent / "wheels_index"):
        if candidate.is_dir():
            return candidate
    raise IndexDataError(
        "the wheels_index data directory is missing from this installation",
        hint="Reinstall attn-doctor; a source checkout must keep wheels_index/ at its root.",
    )


def read_toml(name: str, directory: Path | None = None) -> dict[str, Any]:
    """Parse ``wheels_index/<name>`` (cached: the files cannot change within a run)."""
    return _read_toml(name, directory or index_dir())


@functools.cache
def _read_toml(name: str, directory: Path) -> dict[str, Any]:
    path = directory / name
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise IndexDataError(f"cannot read index file {name}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise IndexDataError(f"index file {name} is not valid TOML: {exc}") from exc


SIMPLE_REQUIREMENT = re.compile(
    r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<spec>[<>=!~][^;@\[\]]*)?"
)
"""A PEP 508 requirement without extras, URL or marker: a name, then an optional specifier."""


def name_and_specifier(requirement: str) -> tuple[str, str]:
    """The name and specifier of a requirement, without ``packaging.requirements`` when it
    is a plain ``name<spec>`` (the data's and the frameworks' pins are)."""
    simple = SIMPLE_REQUIREMENT.fullmatch(requirement.strip())
    if simple is not None:
        try:
            return simple["name"], str(SpecifierSet(simple["spec"] or ""))
        except InvalidSpecifier:
            pass
    from packaging.requirements import Requirement

    req = Requirement(requirement)
    return req.name, str(req.specifier)

class Entry:
    """Typed access to one TOML table; every error names the file and the entry.

    The one reader every data loader (rules, index, runtime, symptoms) uses: each accessor
    validates type and format and raises ``IndexDataError`` naming ``file: table[i] (label).key``.
    """

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise IndexDataError(f"{where}: expected a table")
        self.data: dict[str, Any] = data
        self.where = where

    def fail(self, key: str, why: str) -> IndexDataError:
        return IndexDataError(f"{self.where}.{key}: {why}")

    def str_(
        self, key: str, *, default: str | None = None, pattern: re.Pattern[str] | None = None
    ) -> str:
        value = self.data.get(key, default)
        if value is None:
            raise self.fail(key, "missing")
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {type(value).__name__}")
        if pattern is not None and value and not pattern.match(value):
            raise self.fail(key, f"{value!r} is not in the expected format")
        return value

    def opt_str(self, key: str, *, pattern: re.Pattern[str] | None = None) -> str | None:
        if key not in self.data or self.data[key] == "":
            return None
        return self.str_(key, pattern=pattern)

    def int_(self, key: str, *, default: int | None = None) -> int:
        value = self.data.get(key, default)
        if value is None:
            raise self.fail(key, "missing")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.fail(key, f"expected a non-negative integer, got {value!r}")
        return value

    def opt_int(self, key: str) -> int | None:
        """An optional positive integer (absent: None)."""
        if key not in self.data:
            return None
        value = self.int_(key)
        if value == 0:
            raise self.fail(key, "must be positive")
        return value

    def sub(self, key: str) -> Entry | None:
        """An optional inline table as an entry of its own (absent: None)."""
        if key not in self.data:
            return None
        return Entry(self.data[key], f"{self.where}.{key}")

    def only(self, keys: Collection[str]) -> None:
        """Refuse keys this reader does not know (a typo must not pass silently)."""
        unknown = sorted(set(self.data) - set(keys))
        if unknown:
            raise self.fail(unknown[0], "unknown key")

    def bool_(self, key: str, *, default: bool | None = None) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true/false, got {value!r}")
        return value

    def strs(self, key: str, *, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "expected a list of strings")
        if allowed is not None:
            for item in value:
                if item not in allowed:
                    raise self.fail(key, f"{item!r} is not one of {', '.join(allowed)}")
        return tuple(value)

    def ints(self, key: str) -> tuple[int, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise self.fail(key, "expected a list of integers")
        return tuple(value)

    def provenance(self) -> tuple[str, bool]:
        source = self.str_("source")
        if not source.strip():
            raise self.fail("source", "must name where the fact comes from")
        return source, self.bool_("verified")

    @overload
    def version(self, key: str) -> str: ...

    @overload
    def version(self, key: str, *, optional: bool) -> str | None: ...

    def version(self, key: str, *, optional: bool = False) -> str | None:
        """A PEP 440 version (``optional``: absent or empty reads as None)."""
        value = self.opt_str(key) if optional else self.str_(key)
        if value is None:
            return None
        try:
            Version(value)
        except InvalidVersion as exc:
            raise self.fail(key, f"{value!r} is not a version") from exc
        return value

    # The index loader's accessors (``...`` as the default means "required").

    def _get(self, key: str, default: object = ...) -> object:
        if key not in self.data:
            if default is ...:
                raise self.fail(key, "missing")
            return default
        return self.data[key]

    def text(self, key: str, default: object = ..., *, pattern: str | None = None) -> str:
        """A string; ``pattern`` must match it whole."""
        value = self._get(key, default)
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {value!r}")
        if pattern is not None and not re.fullmatch(pattern, value):
            raise self.fail(key, f"{value!r} does not look like {pattern}")
        return value

    def flag(self, key: str, default: object = ...) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {value!r}")
        return value

    def number(self, key: str) -> float:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"expected a number, got {value!r}")
        return float(value)

    def integer(self, key: str) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {value!r}")
        return value

    def texts(self, key: str, default: object = ...) -> tuple[str, ...]:
        value = self._get(key, default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "expected a list of strings")
        return tuple(value)

    def integers(self, key: str) -> tuple[int, ...]:
        value = self._get(key)
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise self.fail(key, "expected a list of integers")
        return tuple(value)

    def flags(self, key: str) -> tuple[bool, ...]:
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(v, bool) for v in value):
            raise self.fail(key, "expected a list of true/false")
        return tuple(value)

    def tables(self, key: str, default: object = ...) -> list[Entry]:
        """An array of tables, each an entry named ``where.key[i]``."""
        value = self._get(key, default)
        if not isinstance(value, list):
            raise self.fail(key, "expected a list of tables")
        return [Entry(v, f"{self.where}.{key}[{i}]") for i, v in enumerate(value)]

    def table(self, key: str) -> Entry:
        """A required sub-table."""
        return Entry(self._get(key), f"{self.where}.{key}")

    def requirement(self, key: str, value: str) -> str:
        """``value`` (read from ``key``) must be a PEP 508 requirement.

        The data's requirements are a name and a specifier (``kernels>=0.19.1,<0.20.0``):
        those are checked with the specifier parser already loaded, so that reading the data
        on ``check``'s start-up path does not load ``packaging.requirements`` (its markers pull
        in ``packaging.tags`` and the ELF readers). Anything else gets the full PEP 508 parse.
        """
        simple = SIMPLE_REQUIREMENT.fullmatch(value)
        if simple is not None:
            try:
                SpecifierSet(simple["spec"] or "")
            except InvalidSpecifier:
                pass
            else:
                return value
        from packaging.requirements import InvalidRequirement, Requirement

        try:
            Requirement(value)
        except InvalidRequirement as exc:
            raise self.fail(key, f"{value!r} is not a requirement ({exc})") from None
        return value

    def specifier(self, key: str) -> str:
        value = self.str_(key)
        try:
            SpecifierSet(value)
        except InvalidSpecifier as exc:
            raise self.fail(key, f"{value!r} is not a version specifier") from exc
        return value


def tables(doc: dict[str, Any], file: str, key: str) -> list[Entry]:
    """The ``[[key]]`` array of tables as entries (refused when missing or empty)."""
    raw = doc.get(key)
    if not isinstance(raw, list) or not raw:
        raise IndexDataError(f"{file}: [[{key}]] entries are missing")
    entries = []
    for i, item in enumerate(raw):
        label = (
            item.get("cuda")
            or item.get("name")
            or item.get("torch")
            or item.get("value")
            or item.get("cuda_major")
            if isinstance(item, dict)
            else None
        )
        entries.append(
            Entry(item, f"{file}: {key}[{i}]" + (f" ({label})" if label is not None else ""))
        )
    return entries


def check_schema(doc: dict[str, Any], file: str, supported: int = 1) -> None:
    """Refuse a data file whose ``schema`` is not the one this code reads."""
    schema = doc.get("schema")
    if schema != supported:
        raise IndexDataError(f"{file}: schema {schema!r} is not {supported}")
