"""Confirm that a wheel URL exists before acting on it (HTTP HEAD, redirects followed).

Offline, or when the host cannot be reached, the answer is ``None``: unconfirmed, said so in
the plan, never treated as a yes or a no.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class UrlCheck:
    """The outcome of one existence check."""

    url: str
    exists: bool | None
    """True: the server answered 2xx; False: it answered 404/410; None: not confirmed."""
    detail: str


def confirm_url(url: str, *, timeout: float = 10.0) -> UrlCheck:
    """``HEAD url``; never raises."""
    if not url.startswith(("https://", "http://")):
        return UrlCheck(url=url, exists=None, detail="not an http(s) URL")
    request = urllib.request.Request(url, method="HEAD")  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return UrlCheck(url=url, exists=True, detail=f"HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 410):
            return UrlCheck(url=url, exists=False, detail=f"HTTP {exc.code}")
        return UrlCheck(url=url, exists=None, detail=f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return UrlCheck(url=url, exists=None, detail=f"unreachable: {reason}")
