"""What pins a wheel to its content (pure): the sha256 its source publishes, in pip's syntax.

A direct-URL requirement (``flash-attn @ https://…whl``) is pinned with ``#sha256=…``: pip
downloads the file, compares the digest and stops before installing anything when it differs
("THESE PACKAGES DO NOT MATCH THE HASHES"). A requirement by name from an index (``xformers==…``)
is checked by pip against the digest the index itself serves in its links; the recorded sha256
says which file that was.

A wheel whose digest is not known installs unpinned: for a community (third-party) build the
plan says so in words, ``UNPINNED_WARNING``, and the installer records the digest of the file
it downloaded in the install journal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from attn_doctor.planner.plans import WheelCandidate

UNPINNED_WARNING = "unpinned, third-party binary"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_URL_REQ = re.compile(r"^(?P<name>[^@\s]+?)\s*@\s*(?P<url>\S+)$")


def pinned_requirement(cand: WheelCandidate) -> str:
    """``cand.requirement`` with its sha256 pinned where pip can pin it (a direct URL)."""
    found = _URL_REQ.match(cand.requirement)
    if found is None or cand.sha256 is None or not _SHA256.match(cand.sha256):
        return cand.requirement
    url = found.group("url").split("#", 1)[0]
    return f"{found.group('name')} @ {url}#sha256={cand.sha256}"


def integrity_note(cand: WheelCandidate) -> str | None:
    """What the plan says about the file's integrity, or None where nothing needs saying."""
    if cand.source not in ("community", "upstream-release", "pypi", "pytorch-index"):
        return None
    if cand.sha256 is not None:
        if _URL_REQ.match(cand.requirement):
            return f"pinned: sha256 {cand.sha256[:12]}… (pip refuses a file that differs)"
        return f"sha256 {cand.sha256[:12]}… recorded from the package index"
    if cand.source == "community":
        return (
            f"{UNPINNED_WARNING}: its source publishes no sha256 that attn-doctor could read; "
            "the downloaded file's sha256 is recorded in the install journal"
        )
    if cand.source == "upstream-release":
        return "unpinned: the release asset's sha256 is not known offline"
    return None


def downloaded_sha256(item: Mapping[str, Any]) -> str | None:
    """The sha256 of the file behind one ``install`` item of pip's ``--report`` JSON."""
    info = item.get("download_info")
    archive = info.get("archive_info") if isinstance(info, Mapping) else None
    if not isinstance(archive, Mapping):
        return None
    hashes = archive.get("hashes")
    if isinstance(hashes, Mapping) and isinstance(hashes.get("sha256"), str):
        return str(hashes["sha256"])
    text = archive.get("hash")
    if isinstance(text, str) and text.startswith("sha256="):
        return text.removeprefix("sha256=")
    return None


def first_download_note(cand: WheelCandidate, hashes: Sequence[tuple[str, str]]) -> str | None:
    """For a URL wheel without a known digest: the sha256 of the file pip downloaded, in words
    (recorded in the install journal and report), else None."""
    if cand.sha256 is not None or _URL_REQ.match(cand.requirement) is None:
        return None
    name = re.sub(r"[-_.]+", "-", cand.requirement.split("@", 1)[0].strip()).lower()
    name = name.split("[", 1)[0]
    for dist, digest in hashes:
        if dist == name:
            label = UNPINNED_WARNING if cand.source == "community" else "unpinned"
            return f"{label}: sha256 of the downloaded file {digest} (recorded on first download)"
    return None
