"""Recommendations as text: the table the CLI prints and the JSON, CSV and M3U files that the
CLI writes and the web app offers as downloads (one definition of each format).

Names, titles and explanations are user and catalog text: table cells are :class:`rich.text.Text`
(:func:`cell`), never markup.
"""

from __future__ import annotations

import csv
import io
import json
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    m3u = "m3u"


def cell(value: object) -> Text:
    """A table cell (or title) showing ``value`` literally: never parsed as markup or emoji."""
    return Text("" if value is None else str(value))


def render(rec: Any, fmt: OutputFormat) -> str:
    """Recommendations as text in one of the output formats."""
    if fmt is OutputFormat.json:
        return json.dumps([t.to_dict() for t in rec.tracks], indent=2, ensure_ascii=False) + "\n"
    if fmt is OutputFormat.csv:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(
            [
                "rank",
                "uri",
                "name",
                "artists",
                "album",
                "year",
                "popularity",
                "score",
                "explanation",
            ]
        )
        for i, t in enumerate(rec.tracks, 1):
            writer.writerow(
                [
                    i,
                    t.uri,
                    t.name,
                    "; ".join(t.artists),
                    t.album or "",
                    t.year or "",
                    "" if t.popularity is None else f"{t.popularity:g}",
                    f"{t.score:.6f}",
                    t.explanation or "",
                ]
            )
        return buf.getvalue()
    if fmt is OutputFormat.m3u:
        lines = ["#EXTM3U"]
        for t in rec.tracks:
            lines.append(f"#EXTINF:-1,{', '.join(t.artists)} - {t.name}")
            lines.append(t.url)
        return "\n".join(lines) + "\n"
    buf = io.StringIO()
    # Names, titles and explanations are user and catalog text: cells are Text, never markup.
    console = Console(file=buf, width=160, soft_wrap=False, markup=False, emoji=False)
    table = Table(
        title=cell(
            f"{rec.model}: {len(rec.tracks)} tracks" + (f" for {rec.title!r}" if rec.title else "")
        )
    )
    for col in ("#", "track", "artist", "year", "score", "why"):
        table.add_column(col, overflow="fold")
    for i, t in enumerate(rec.tracks, 1):
        table.add_row(
            cell(i),
            cell(t.name),
            cell(", ".join(t.artists)),
            cell(t.year or ""),
            cell(f"{t.score:.3f}"),
            cell(t.explanation or ""),
        )
    console.print(table)
    return buf.getvalue()


__all__ = ["OutputFormat", "cell", "render"]
