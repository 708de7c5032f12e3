"""``attn-doctor index``: the knowledge attn-doctor plans with, and ``index update``."""

from __future__ import annotations

import os
import sys

import click

from attn_doctor.errors import ExitCode


@click.group("index")
def index_group() -> None:
    """The wheel index attn-doctor plans with: where it comes from, and updating it."""


@index_group.command("update")
@click.option(
    "--index-url",
    help="The package index (a mirror for air-gapped sites) to read, JSON simple API "
    "(default: ATTN_DOCTOR_INDEX_URL, PIP_INDEX_URL, else pip's default).",
)
@click.option(
    "--github-api",
    default="https://api.github.com",
    show_default=True,
    help="GitHub's API (release pages: flash-attn's assets, the community builds); "
    "'none' skips them.",
)
@click.option(
    "--find-links",
    "find_links",
    multiple=True,
    help="A PEP 503 / --find-links page publishing attention wheels (third-party trust); "
    "default: Astral's GPU wheel index. Repeatable; 'none' skips them.",
)
@click.option("--offline", is_flag=True, help="Read nothing: say what the bundled data is.")
@click.option("--json", "json_mode", is_flag=True, help="Print one versioned JSON document.")
def update_command(
    *,
    index_url: str | None,
    github_api: str,
    find_links: tuple[str, ...],
    offline: bool,
    json_mode: bool,
) -> None:
    """Read current releases from the registries into an overlay in the user's cache.

    Validated by the same loaders as the bundled data before it replaces anything; when a
    source cannot be reached, the bundled data stays in use and the output says so.
    """
    from attn_doctor.datafiles import bundled_index_dir
    from attn_doctor.index.registry import default_index_url
    from attn_doctor.index.update import FIND_LINKS, SourceResult, UpdateResult, update_index
    from attn_doctor.overlay import knowledge_line

    environ = dict(os.environ)
    if offline:
        result = UpdateResult(
            updated=None,
            directory=None,
            sources=(
                SourceResult(
                    name="the package index", url="", trust="official", status="not read (offline)"
                ),
            ),
            notes=("offline: the bundled data (or an earlier update) stays in use",),
        )
    else:
        pages = (
            ()
            if find_links == ("none",)
            else tuple((u, "third-party index") for u in find_links) or FIND_LINKS
        )
        result = update_index(
            index_url=index_url or default_index_url(environ),
            environ=environ,
            bundled=bundled_index_dir(),
            github_api=None if github_api == "none" else github_api,
            find_links=pages,
        )
    code = ExitCode.OK
    if json_mode:
        from attn_doctor.report.envelope import make_envelope, write_envelope

        write_envelope(make_envelope("index update", result=result, exit_code=code))
    else:
        for src in result.sources:
            used = f", {src.wheels} wheel(s) for the planners" if src.wheels else ""
            note = f" ({src.note})" if src.note else ""
            click.echo(f"{src.name} ({src.trust}) {src.url}: {src.status}{used}{note}")
        for name, version in result.newest:
            click.echo(f"  newest {name}: {version}")
        if result.directory:
            click.echo(f"overlay written: {', '.join(result.files)} ({result.updated})")
        for note in result.notes:
            click.echo(note)
        click.echo(knowledge_line(environ))
    sys.exit(int(code))
