"""Import boundaries of the package, read from the source with ``ast`` (nothing is imported).

- A name with a leading underscore is private to its module, and a module with a leading
  underscore is private to its package: nothing imports either from elsewhere. A helper that
  another module needs is public (no underscore) where it is defined.
- ``attn_doctor/commands/`` holds click commands and their wiring: only ``cli.py`` and the
  commands themselves import it; library code lives in library modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "attn_doctor"

NOT_YET: frozenset[str] = frozenset({"attn_doctor.explain"})
"""Packages whose private cross-module imports are still to be made public (explain's
checks_base/checks_host/checks_packages split, being reworked elsewhere). Remove an entry once
its package passes; the test fails when an entry is no longer needed."""


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _imports(path: Path) -> Iterator[tuple[int, str, str | None]]:
    """(line, module, name) for each ``from module import name`` and ``import module``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                yield node.lineno, node.module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _private(segment: str) -> bool:
    return segment.startswith("_") and not segment.startswith("__")


def _private_imports(module: str, path: Path) -> list[str]:
    found = []
    package = _package_of(module, path)
    for line, source, name in _imports(path):
        if not source.startswith("attn_doctor"):
            continue
        if name is not None and _private(name) and source != module:
            found.append(f"{path.name}:{line}: from {source} import {name}")
        segments = source.split(".")
        for depth, segment in enumerate(segments):
            owner = ".".join(segments[:depth])
            if _private(segment) and segment != "_version" and not package.startswith(owner):
                found.append(f"{path.name}:{line}: imports the private module {source}")
    return found


def _not_yet(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in NOT_YET)


def test_no_private_name_is_imported_from_another_module() -> None:
    found = []
    for module, path in _modules():
        if not _not_yet(module):
            found += _private_imports(module, path)
    assert found == [], "make the name public where it is defined:\n" + "\n".join(found)


def test_every_not_yet_entry_is_still_needed() -> None:
    for package in NOT_YET:
        assert any(
            _private_imports(module, path)
            for module, path in _modules()
            if _not_yet(module) and (module == package or module.startswith(package + "."))
        ), f"{package} imports no private name any more: remove it from NOT_YET"


def test_only_the_cli_imports_commands() -> None:
    found = []
    for module, path in _modules():
        if module.startswith("attn_doctor.commands") or module == "attn_doctor.cli":
            continue
        for line, source, _name in _imports(path):
            if source == "attn_doctor.commands" or source.startswith("attn_doctor.commands."):
                found.append(f"{module}:{line}: imports {source}")
    assert found == [], "move library code out of attn_doctor/commands/:\n" + "\n".join(found)
