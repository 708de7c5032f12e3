"""Version text to a typed value: the one parser for every "a version, or None" the doctor reads."""

from __future__ import annotations

from packaging.version import InvalidVersion, Version


def parse_version(text: str | None, *, public: bool = False) -> Version | None:
    """``Version(text)``, or None when ``text`` is missing or not a PEP 440 version.

    ``public=True`` drops a local label (``2.8.0+cu128`` -> ``2.8.0``), for comparisons with
    upstream release numbers.
    """
    if not text:
        return None
    try:
        version = Version(text)
    except InvalidVersion:
        return None
    return Version(version.public) if public else version
