"""Catalog writes and reads for track and artist facts (audio features, genres, popularity, fetch log)."""

from __future__ import annotations

from segue.catalog.core import CatalogBase


class FactsWrites(CatalogBase):
    pass
