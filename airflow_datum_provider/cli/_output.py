"""How ``datumctl`` prints: pachctl-like tables and key/value blocks, or JSON lines.

``--output json`` prints one JSON object per line, with the ``to_dict()`` field names of the
store's info classes (documented in ``docs/cli.md``); tables are for people and may change.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import click

__all__ = [
    "OutputFormat",
    "dash",
    "human_size",
    "human_time",
    "output_option",
    "print_fields",
    "print_json",
    "print_records",
    "print_table",
    "state_style",
]

OutputFormat = Literal["text", "json", "yaml"]
F = TypeVar("F", bound=Callable[..., Any])

# Column widths come from the first rows, so a million-file listing streams instead of being
# held in memory just to align it; a later, longer cell only pushes its own row out.
_WIDTH_SAMPLE = 1000


def output_option(fn: F) -> F:
    """Add ``-o/--output text|json|yaml`` and pachctl's ``--raw`` (= json) as ``output``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if kwargs.pop("raw", False) and kwargs.get("output") == "text":
            kwargs["output"] = "json"
        return fn(*args, **kwargs)

    wrapped = click.option(
        "--raw",
        is_flag=True,
        help="Print JSON records (pachctl's --raw; -o yaml for YAML).",
    )(wrapper)
    return click.option(  # type: ignore[return-value]
        "-o",
        "--output",
        type=click.Choice(["text", "json", "yaml"]),
        default="text",
        show_default=True,
        help="text: a table for people; json: one object per line, stable field names; "
        "yaml: the same records as YAML documents.",
    )(wrapped)


def human_size(size: int | None) -> str:
    """``1536`` → ``1.5 KiB``; ``None`` → ``-``."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_time(stamp: str | None, *, now: datetime | None = None) -> str:
    """An ISO timestamp as pachctl shows it: ``3 minutes ago``; ``None`` → ``-``."""
    if not stamp:
        return "-"
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = int(((now or datetime.now(UTC)) - when).total_seconds())
    if seconds < 0:
        return "just now"
    for span, unit in ((86400 * 30, ""), (86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= span:
            if not unit:
                return when.strftime("%Y-%m-%d")
            count = seconds // span
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return f"{seconds} second{'s' if seconds != 1 else ''} ago"


def dash(value: object) -> str:
    """``None`` / empty → ``-``, else ``str(value)``."""
    return "-" if value is None or value == "" else str(value)


def print_records(output: OutputFormat, records: Iterable[dict[str, Any]]) -> None:
    """Records as JSON lines (``json``) or YAML documents separated by ``---`` (``yaml``)."""
    if output != "yaml":
        print_json(records)
        return
    import yaml

    for n, record in enumerate(records):
        if n:
            click.echo("---")
        click.echo(yaml.safe_dump(record, sort_keys=False, allow_unicode=True), nl=False)


def print_json(records: Iterable[dict[str, Any]]) -> None:
    """One compact JSON object per line."""
    for record in records:
        click.echo(json.dumps(record, ensure_ascii=False, separators=(",", ":")))


_STATE_COLOURS = {
    "success": "green",
    "failure": "red",
    "failed": "red",
    "killed": "red",
    "dead": "magenta",
    "running": "yellow",
    "starting": "yellow",
    "created": "yellow",
    "recovered": "cyan",
    "skipped": "bright_black",
}


def state_style(cell: str) -> str:
    """A state cell coloured by its state (the first word that names one), for a terminal.

    ``click.echo`` drops the colours when stdout is not a terminal (or under ``NO_COLOR``).
    """
    if os.environ.get("NO_COLOR"):
        return cell
    for word in cell.replace("/", " ").replace(":", " ").split():
        colour = _STATE_COLOURS.get(word)
        if colour is not None:
            return click.style(cell, fg=colour)
    return cell


def print_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    styles: Mapping[int, Callable[[str], str]] | None = None,
) -> None:
    """A left-aligned table; the last column is not padded.

    ``styles`` colours the (padded) cells of some columns; widths are counted without them.
    """
    it = iter(rows)
    sample = list(itertools.islice(it, _WIDTH_SAMPLE))
    widths = [len(h) for h in headers]
    for row in sample:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row)]

    def line(cells: Sequence[str], styled: bool = True) -> str:
        padded = [cell.ljust(w) for cell, w in zip(cells[:-1], widths)]
        out = [*padded, cells[-1]]
        if styled and styles:
            for i, style in styles.items():
                if i < len(out) and out[i].strip():
                    stripped = out[i].rstrip()
                    out[i] = style(stripped) + out[i][len(stripped) :]
        return "   ".join(out).rstrip()

    click.echo(line(headers, styled=False))
    for row in itertools.chain(sample, it):
        click.echo(line(row))


def print_fields(fields: Sequence[tuple[str, str]]) -> None:
    """A key/value block, like ``pachctl inspect``."""
    width = max(len(key) for key, _ in fields) + 1
    for key, value in fields:
        click.echo(f"{key + ':':<{width}} {value}")
