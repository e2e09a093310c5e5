"""The catalog (an embedded DuckDB file). ``Catalog.open(path)`` is the entry point."""

from __future__ import annotations

from segue.catalog.core import SCHEMA_VERSION
from segue.catalog.facts import FactsWrites
from segue.catalog.playlists import MpdWrites, SliceResult
from segue.catalog.queries import Queries


class Catalog(MpdWrites, FactsWrites, Queries):
    """The whole catalog API: :class:`CatalogBase` plus the write and query mixins."""


__all__ = ["SCHEMA_VERSION", "Catalog", "SliceResult"]
