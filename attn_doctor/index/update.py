"""``attn-doctor index update``: read current releases from the registries into an overlay.

Shared by the command and by the maintainer script (``scripts/refresh_index.py``): the readers
take the package index's JSON simple API (PEP 691, ``Accept: application/vnd.pypi.simple.v1+json``)
and each wheel's PEP 658 metadata file, never a full wheel. The result is written as a complete
copy of the index into the user's cache (``$XDG_CACHE_HOME/attn-doctor/index``), validated by
the same loaders as the bundled data before it replaces anything, with ``overlay.json`` saying
when, from where (each source with its trust level) and for which attn-doctor version. Offline,
or when a source fails, the bundled data stays in use and the result says so.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from attn_doctor._version import __version__
from attn_doctor.index.registry import (
    Fetch,
    http_get,
    metadata_field,
    simple_project,
    to_toml,
    version_of,
    wheel_metadata,
)
from attn_doctor.overlay import (
    OVERLAY_FILE,
    OVERLAY_SCHEMA,
    cache_root,
    overlay_path,
)

PROJECTS: tuple[str, ...] = (
    "xformers",
    "flash-attn",
    "flash-attn-4",
    "sageattention",
    "unsloth",
    "kernels",
    "torch",
    "flashinfer-python",
    "nvidia-cutlass-dsl",
)
"""The projects whose newest releases are read from the package index."""

def _is_release(version: str) -> bool:
    try:
        return not Version(version).is_devrelease
    except InvalidVersion:
        return False


def newest_version(page: Mapping[str, Any]) -> str | None:
    """The newest non-yanked version with a file (pre-releases count: flash-attn-4 is beta)."""
    versions = {
        v
        for f in page["files"]
        if not f.get("yanked") and (v := version_of(str(f["filename"]))) and _is_release(v)
    }
    return max(versions, key=Version, default=None)


def flash_attn_4_toml(page: Mapping[str, Any], fetch: Fetch = http_get) -> str:
    """``flash_attn_4.toml`` from the project page: one wheel per release, its METADATA."""
    first_wheel: dict[str, dict[str, Any]] = {}
    for f in page["files"]:
        name = str(f["filename"])
        version = version_of(name)
        if not name.endswith(".whl") or f.get("yanked") or not version or not _is_release(version):
            continue
        first_wheel.setdefault(version, f)
    tables = []
    for version in sorted(first_wheel, key=Version):
        f = first_wheel[version]
        meta = wheel_metadata(f, fetch)
        tables.append(
            (
                "release",
                {
                    "version": version,
                    "uploaded": str(f.get("upload-time", ""))[:10],
                    "filename": f["filename"],
                    "sha256": f["hashes"]["sha256"],
                    "requires_python": (metadata_field(meta, "Requires-Python") or [""])[0],
                    "requires_dist": metadata_field(meta, "Requires-Dist"),
                    "source": "flash-attn-4 wheel METADATA on the package index",
                    "verified": True,
                },
            )
        )
    return to_toml({"schema": 1, "package": "flash-attn-4"}, tables)


# --- GitHub releases and --find-links pages ---------------------------------------------------

GITHUB_REPOS: tuple[tuple[str, str], ...] = (
    ("Dao-AILab/flash-attention", "official"),
    ("mjun0812/flash-attention-prebuild-wheels", "community"),
)
"""Release pages read by ``index update``: flash-attn's own (their real asset lists: a page
can gain assets after its tag) and the community builds."""
FIND_LINKS: tuple[tuple[str, str], ...] = (("https://wheels.astral.sh/", "third-party index"),)
"""PEP 503 / --find-links pages that publish attention wheels, with their trust level."""
_HREF = re.compile(r"""href=["']([^"']+)["']""", re.IGNORECASE)
ATTENTION_WHEEL = re.compile(r"^(flash_attn|flash_attn_3|sageattention|xformers)-", re.IGNORECASE)


def github_releases(api: str, repo: str, fetch: Fetch = http_get) -> list[dict[str, Any]]:
    """One page of a repository's releases: tag, date and each asset's name and digest
    (GitHub's ``digest``, ``sha256:…``, where it publishes one)."""
    url = f"{api.rstrip('/')}/repos/{repo}/releases?per_page=100"
    data = json.loads(fetch(url, {"Accept": "application/vnd.github+json"}))
    if not isinstance(data, list):
        raise ValueError(f"{url}: not a list of releases")
    out = []
    for rel in data:
        assets = [
            {
                "name": str(a.get("name", "")),
                "sha256": str(a.get("digest") or "")[7:] or None,
                "url": str(a.get("browser_download_url") or ""),
            }
            for a in rel.get("assets", [])
            if str(a.get("name", "")).endswith(".whl")
        ]
        out.append(
            {"tag": rel.get("tag_name"), "published": rel.get("published_at"), "assets": assets}
        )
    return out


def find_links_wheels(url: str, fetch: Fetch = http_get) -> list[str]:
    """The attention wheels a PEP 503 / ``--find-links`` HTML page links to (file names)."""
    page = fetch(url, {"Accept": "text/html"}).decode("utf-8", "replace")
    names = []
    for href in _HREF.findall(page):
        name = urllib.parse.unquote(href.split("#", 1)[0].rsplit("/", 1)[-1])
        if name.endswith(".whl") and ATTENTION_WHEEL.match(name):
            names.append(name)
    return sorted(set(names))


def _read_extra_sources(
    github_api: str | None,
    find_links: Sequence[tuple[str, str]],
    fetch: Fetch,
    *,
    bundled: Path,
    when: str,
) -> tuple[list[SourceResult], dict[str, Any], list[dict[str, Any]]]:
    """GitHub release pages and find-links pages: each a source with its trust and status;
    what they list is kept in overlay.json and, as ``listed_wheels.toml`` entries, planned."""
    from attn_doctor.index.update_listed import page_entries, release_entries

    results: list[SourceResult] = []
    seen: dict[str, Any] = {}
    entries: list[dict[str, Any]] = []
    for repo, trust in GITHUB_REPOS:
        url = f"{github_api.rstrip('/')}/repos/{repo}/releases" if github_api else ""
        if github_api is None:
            results.append(SourceResult(name=repo, url="", trust=trust, status="not read"))
            continue
        try:
            rels = github_releases(github_api, repo, fetch)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            results.append(
                SourceResult(name=repo, url=url, trust=trust, status=f"unreachable: {exc}")
            )
            continue
        seen[repo] = rels
        found = release_entries(repo, trust, rels, _url_template(bundled, trust), when)
        entries += found
        results.append(
            SourceResult(name=repo, url=url, trust=trust, status="ok", wheels=len(found))
        )
    for page, trust in find_links:
        try:
            found, note = page_entries(page, trust, fetch, when)
        except (OSError, ValueError) as exc:
            results.append(
                SourceResult(name=page, url=page, trust=trust, status=f"unreachable: {exc}")
            )
            continue
        seen[page] = [e["filename"] for e in found]
        entries += found
        results.append(
            SourceResult(
                name=page, url=page, trust=trust, status="ok", wheels=len(found), note=note
            )
        )
    return results, seen, entries


def _url_template(bundled: Path, trust: str) -> str:
    """The release-asset URL rule of the bundled data (used when the API names no URL)."""
    from attn_doctor.datafiles import read_toml

    name = "flash_attn.toml" if trust == "official" else "flash_attn_community.toml"
    return str(read_toml(name, bundled)["url_template"])


# --- the overlay --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SourceResult:
    """One source read by ``index update``."""

    name: str
    url: str
    trust: str
    status: str
    """``ok``, ``unreachable: …`` or ``failed: …``."""
    wheels: int = 0
    """Wheels it listed that the planners can use (release pages and index pages)."""
    note: str = ""
    """What was left out, and why."""


@dataclass(frozen=True, kw_only=True)
class UpdateResult:
    updated: str | None
    """ISO date-time of the overlay written (None: nothing written, bundled data in use)."""
    directory: str | None
    sources: tuple[SourceResult, ...]
    files: tuple[str, ...] = ()
    newest: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


def update_index(
    *,
    index_url: str | None,
    environ: Mapping[str, str],
    bundled: Path,
    fetch: Fetch = http_get,
    projects: Sequence[str] = PROJECTS,
    now: dt.datetime | None = None,
    github_api: str | None = None,
    find_links: Sequence[tuple[str, str]] = (),
) -> UpdateResult:
    """Read the sources and write the overlay; never raises for a network failure (the result
    says which source failed and the bundled data stays in use)."""
    from attn_doctor.index.load import load_index
    from attn_doctor.rules_data import load_rules

    sources: list[SourceResult] = []
    files: dict[str, str] = {}
    newest: dict[str, str] = {}
    if index_url is None:
        sources.append(
            SourceResult(
                name="the package index",
                url="",
                trust="official",
                status="unreachable: no index URL known (pass --index-url)",
            )
        )
    else:
        status = "ok"
        try:
            for project in projects:
                page = simple_project(index_url, project, fetch)
                version = newest_version(page)
                if version is not None:
                    newest[project] = version
                if project == "flash-attn-4":
                    files["flash_attn_4.toml"] = flash_attn_4_toml(page, fetch)
                elif project in ("xformers", "sageattention"):
                    files.update(_newer_releases(project, page, bundled, fetch, now))
        except (OSError, urllib.error.URLError) as exc:
            status = f"unreachable: {getattr(exc, 'reason', exc)}"
        except (ValueError, KeyError, TypeError) as exc:
            status = f"failed: {exc}"
        if status != "ok":
            files.clear()
        sources.append(
            SourceResult(name="the package index", url=index_url, trust="official", status=status)
        )
    when = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    extra, listed, entries = _read_extra_sources(
        github_api, find_links, fetch, bundled=bundled, when=when
    )
    sources += extra
    if files and entries:
        from attn_doctor.index.update_listed import listed_toml

        files["listed_wheels.toml"] = listed_toml(entries, when)
    if not files:
        return UpdateResult(
            updated=None,
            directory=None,
            sources=tuple(sources),
            notes=("nothing written: the bundled data stays in use",),
        )
    root = cache_root(environ)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="index-", dir=root))
    try:
        target = staging / "index"
        shutil.copytree(bundled, target)
        for name, text in files.items():
            (target / name).write_text(text, encoding="utf-8")
        load_index(target)  # the same loaders as the bundled data: a bad overlay is refused
        load_rules(target)
        description = {
            "schema": OVERLAY_SCHEMA,
            "attn_doctor_version": __version__,
            "updated": when,
            "files": sorted(files),
            "sources": [vars(s) for s in sources],
            "newest": dict(sorted(newest.items())),
            "listed": listed,
        }
        (target / OVERLAY_FILE).write_text(json.dumps(description, indent=1) + "\n", "utf-8")
        final = overlay_path(environ)
        old = root / f"index-old-{os.getpid()}"
        if final.exists():
            final.replace(old)
        target.replace(final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return UpdateResult(
        updated=when,
        directory=str(final),
        sources=tuple(sources),
        files=tuple(sorted(files)),
        newest=tuple(sorted(newest.items())),
    )


def _newer_releases(
    project: str, page: Mapping[str, Any], bundled: Path, fetch: Fetch, now: dt.datetime | None
) -> dict[str, str]:
    """xformers' and sageattention's releases newer than the bundled data, appended to their
    files (none: nothing to write)."""
    from attn_doctor.datafiles import read_toml
    from attn_doctor.index.update_listed import append_tables, sage_additions, xformers_additions

    when = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%d")
    if project == "xformers":
        name, key = "xformers.toml", "wheel"
        known = {str(w["version"]) for w in read_toml(name, bundled).get("wheel", [])}
        known |= {str(b["version"]) for b in read_toml("xformers_builds.toml", bundled)["release"]}
        added = xformers_additions(page, known, fetch, when)
    else:
        name, key = "sageattention.toml", "release"
        rels = read_toml(name, bundled).get("release", [])
        known = {str(r["version"]) for r in rels if r.get("kind") == "pypi"}
        added = sage_additions(page, known, fetch, when)
    if not added:
        return {}
    return {name: append_tables((bundled / name).read_text(encoding="utf-8"), key, added)}

