"""The catalog's record of matches with other services, and the keys it gives to match by.

What was matched how (method, confidence, the other service's id, the ISRC learnt) is kept in
the catalog's ``source_matches`` table, created on first use (:func:`store_matches`). The
matching rules and records are :mod:`segue.providers.matching`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from segue.providers.matching import NAME_KEY, ArtistKey, MatchRecord, TrackKey

if TYPE_CHECKING:
    from segue.catalog import Catalog

# -- the catalog's record of matches -----------------------------------------------------------

MATCHES_TABLE = """
CREATE TABLE IF NOT EXISTS source_matches (
    provider VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,          -- 'track' or 'artist'
    id VARCHAR NOT NULL,            -- Spotify id in the catalog
    external_id VARCHAR,            -- the other service's id (NULL: unmatched)
    method VARCHAR NOT NULL,        -- 'isrc', 'name', 'name+duration', 'unmatched'
    confidence REAL,
    isrc VARCHAR,
    matched_at TIMESTAMP DEFAULT current_timestamp,
    PRIMARY KEY (provider, kind, id)
)
"""


def _has_table(catalog: Catalog) -> bool:
    return bool(
        catalog.scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'source_matches'"
        )
    )


def store_matches(catalog: Catalog, records: Sequence[MatchRecord]) -> int:
    """Record (or replace) how each id was matched. Creates the table on first use."""
    if not records:
        return 0
    con = catalog.con
    con.execute(MATCHES_TABLE)
    con.executemany(
        """
        INSERT OR REPLACE INTO source_matches
            (provider, kind, id, external_id, method, confidence, isrc, matched_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, current_timestamp)
        """,
        [
            [r.provider, r.kind, r.id, r.external_id, r.method, r.confidence, r.isrc]
            for r in records
        ],
    )
    return len(records)


def known_isrcs(catalog: Catalog, track_ids: Sequence[str]) -> dict[str, str]:
    """ISRCs learnt for ``track_ids`` from any earlier match."""
    if not track_ids or not _has_table(catalog):
        return {}
    rows = catalog.con.execute(
        """
        SELECT id, min(isrc) FROM source_matches
        WHERE kind = 'track' AND isrc IS NOT NULL AND list_contains(?, id) GROUP BY id
        """,
        [list(track_ids)],
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def match_counts(catalog: Catalog) -> dict[str, dict[str, int]]:
    """``{provider: {method: count}}`` over every stored match (and 'unmatched')."""
    if not _has_table(catalog):
        return {}
    out: dict[str, dict[str, int]] = {}
    for provider, method, n in catalog.con.execute(
        "SELECT provider, method, count(*) FROM source_matches GROUP BY ALL ORDER BY ALL"
    ).fetchall():
        out.setdefault(provider, {})[method] = int(n)
    return out


def track_keys(catalog: Catalog, track_ids: Sequence[str]) -> dict[str, TrackKey]:
    """Match keys of the catalog's ``track_ids`` (unknown or nameless ones left out)."""
    isrcs = known_isrcs(catalog, track_ids)
    durations = dict(
        catalog.con.execute(
            "SELECT track_id, duration_ms FROM tracks WHERE list_contains(?, track_id)",
            [list(track_ids)],
        ).fetchall()
    )
    out: dict[str, TrackKey] = {}
    for row in catalog.track_rows(track_ids):
        if not row.get("name") or not row.get("artist"):
            continue
        tid = row["track_id"]
        out[tid] = TrackKey(tid, row["artist"], row["name"], durations.get(tid), isrcs.get(tid))
    return out


def artists_missing_genres(
    catalog: Catalog, limit: int | None = None, provider: str | None = None
) -> list[str]:
    """Keys of artists without genres, most-played first: their Spotify id, or
    ``name:<normalised name>`` for artists known by name only (feature tables, the demo), so
    sources that match by name can fill those too. With ``provider``, keys it already answered
    'not_found' or 'unavailable' for are left out."""
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")
    rows = catalog.con.execute(
        f"""
        WITH k AS (
            SELECT a.artist_key, coalesce(a.artist_id, '{NAME_KEY}' || a.norm_name) AS key
            FROM artists a WHERE a.genres IS NULL AND (a.artist_id IS NOT NULL OR a.norm_name <> '')
        )
        SELECT k.key FROM k
        LEFT JOIN (SELECT t.artist_key, count(*) AS n FROM playlist_tracks r
                   JOIN tracks t USING (track_id) GROUP BY t.artist_key) c USING (artist_key)
        WHERE NOT EXISTS (SELECT 1 FROM fetch_attempts fa WHERE fa.provider = ?
                          AND fa.kind IN ('artist_genres', 'artist_facts', 'artists')
                          AND fa.id = k.key AND fa.status IN ('not_found', 'unavailable'))
        ORDER BY coalesce(c.n, 0) DESC, k.key {"" if limit is None else f"LIMIT {limit}"}
        """,
        [provider or ""],
    ).fetchall()
    return [r[0] for r in rows]


def artist_keys(
    catalog: Catalog, artist_ids: Sequence[str], tracks_each: int = 2
) -> dict[str, ArtistKey]:
    """Match keys of the catalog's artists (Spotify ids or ``name:`` keys) with up to
    ``tracks_each`` tracks each."""
    if not artist_ids:
        return {}
    by_id = [k for k in artist_ids if not k.startswith(NAME_KEY)]
    by_name = [k[len(NAME_KEY) :] for k in artist_ids if k.startswith(NAME_KEY)]
    rows = catalog.con.execute(
        f"""
        WITH a AS (SELECT artist_key, coalesce(artist_id, '{NAME_KEY}' || norm_name) AS artist_id, name
                   FROM artists WHERE list_contains(?, artist_id)
                      OR (artist_id IS NULL AND list_contains(?, norm_name))),
        t AS (
            SELECT a.artist_id, t.track_id,
                   row_number() OVER (PARTITION BY a.artist_id
                                      ORDER BY coalesce(c.n, 0) DESC, t.track_id) AS rk
            FROM a JOIN tracks t USING (artist_key)
            LEFT JOIN (SELECT track_id, count(*) AS n FROM playlist_tracks GROUP BY track_id) c
                   USING (track_id)
        )
        SELECT a.artist_id, a.name, list(t.track_id ORDER BY t.rk) FILTER (WHERE t.rk <= ?)
        FROM a LEFT JOIN t USING (artist_id) GROUP BY a.artist_id, a.name
        """,
        [by_id, by_name, tracks_each],
    ).fetchall()
    wanted = [tid for r in rows for tid in (r[2] or [])]
    keys = track_keys(catalog, wanted)
    out: dict[str, ArtistKey] = {}
    for aid, name, tids in rows:
        if not name:
            continue
        out[aid] = ArtistKey(aid, name, tuple(keys[t] for t in (tids or []) if t in keys))
    return out


def genres_by_source(catalog: Catalog) -> dict[str, int]:
    """Artists with at least one genre, by the source that gave them."""
    return {
        str(source or "unknown"): int(n)
        for source, n in catalog.con.execute(
            "SELECT source, count(*) FROM artists WHERE len(genres) > 0 GROUP BY source ORDER BY source"
        ).fetchall()
    }
