"""Catalog writes and reads for track and artist facts (audio features, genres, popularity, fetch log).

Every write stages its records as an Arrow table, registers it with DuckDB and works on it
with set-based SQL inside one transaction, so 100k records go in within a second or two and a
failure leaves the catalog as it was.

Artists are resolved as :mod:`segue.catalog.playlists` does it: by Spotify id where known, else by
normalised name (:func:`segue.core.text.normalise_name`); an artist known only by name learns
its id the first time a record names it with one. An artist known only by id (a feature table
without names) is stored with the empty name ``''`` until a record names it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from segue.catalog.core import CatalogBase, unregister
from segue.core.ids import Kind, is_spotify_id, try_parse
from segue.core.records import AUDIO_FEATURES, ArtistFacts, AudioFeatures, TrackFacts
from segue.core.text import normalise_name

MISSING_KINDS = ("track_facts", "audio_features")
ATTEMPT_STATUSES = ("ok", "not_found", "unavailable")
# fetch_attempts.kind values that count as an attempt at each kind of missing fact (providers
# may record the endpoint name rather than the fact name).
_ATTEMPT_KINDS = {
    "track_facts": ("track_facts", "tracks"),
    "audio_features": ("audio_features",),
    "artist_genres": ("artist_genres", "artist_facts", "artists"),
}


@dataclass(frozen=True)
class FactsResult:
    """What one :meth:`FactsWrites.upsert_facts` call changed."""

    tracks_new: int = 0
    tracks_updated: int = 0  # known tracks that had at least one missing field filled
    tracks_skipped: int = 0  # unknown tracks without a name or artist: nothing to create them from
    artists_new: int = 0
    artists_updated: int = 0
    audio_features: int = 0


def _check_id(value: str | None, what: str, *, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    if not isinstance(value, str) or not is_spotify_id(value):
        raise ValueError(f"{what} must be a bare 22-character base62 Spotify id, got {value!r}")


def _check_popularity(value: int | None, what: str) -> None:
    if value is not None and not (isinstance(value, int) and 0 <= value <= 100):
        raise ValueError(f"{what}: popularity must be an int in 0..100 or None, got {value!r}")


def _stage_artists(records: Sequence[ArtistFacts]) -> pa.Table:
    ids: list[str | None] = []
    names: list[str] = []
    norms: list[str] = []
    for i, rec in enumerate(records):
        if not isinstance(rec, ArtistFacts):
            raise TypeError(f"artist record {i} must be an ArtistFacts, got {type(rec).__name__}")
        _check_id(rec.artist_id, f"artist record {i}: artist_id", nullable=True)
        _check_popularity(rec.popularity, f"artist record {i}")
        name = rec.name or ""
        norm = normalise_name(name)
        if rec.artist_id is None and not norm:
            raise ValueError(f"artist record {i} has neither an artist_id nor a name")
        ids.append(rec.artist_id)
        names.append(name)
        norms.append(norm)
    return pa.table(
        {
            "ord": pa.array(range(len(records)), pa.int64()),
            "artist_id": pa.array(ids, pa.string()),
            "name": pa.array(names, pa.string()),
            "norm": pa.array(norms, pa.string()),
            "genres": pa.array(
                [None if r.genres is None else [str(g) for g in r.genres] for r in records],
                pa.list_(pa.string()),
            ),
            "popularity": pa.array([r.popularity for r in records], pa.int16()),
            "overwrite": pa.array([bool(r.overwrite) for r in records], pa.bool_()),
            "source": pa.array([r.source for r in records], pa.string()),
        }
    )


def _stage_tracks(records: Sequence[TrackFacts]) -> tuple[pa.Table, pa.Table]:
    cols: dict[str, list[Any]] = {
        k: []
        for k in ("track_id", "name", "album_id", "album_name", "release_date", "release_year")
    }
    pops: list[int | None] = []
    durations: list[int | None] = []
    n_artists: list[int] = []
    ref_track: list[str] = []
    ref_ord: list[int] = []
    ref_pos: list[int] = []
    ref_id: list[str | None] = []
    ref_name: list[str] = []
    ref_norm: list[str] = []
    norms: dict[str, str] = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, TrackFacts):
            raise TypeError(f"track record {i} must be a TrackFacts, got {type(rec).__name__}")
        _check_id(rec.track_id, f"track record {i}: track_id")
        _check_id(rec.album_id, f"track record {i} ({rec.track_id}): album_id", nullable=True)
        _check_popularity(rec.popularity, f"track record {i} ({rec.track_id})")
        if rec.duration_ms is not None and not (
            isinstance(rec.duration_ms, int) and 0 <= rec.duration_ms < 2**31
        ):
            raise ValueError(
                f"track record {i} ({rec.track_id}): duration_ms must be a non-negative int, got {rec.duration_ms!r}"
            )
        cols["track_id"].append(rec.track_id)
        cols["name"].append(rec.name)
        cols["album_id"].append(rec.album_id)
        cols["album_name"].append(rec.album_name)
        cols["release_date"].append(rec.release_date or None)
        cols["release_year"].append(rec.release_year)
        pops.append(rec.popularity)
        durations.append(rec.duration_ms)
        n_artists.append(len(rec.artists))
        for pos, ref in enumerate(rec.artists):
            _check_id(
                ref.artist_id, f"track record {i} ({rec.track_id}): artist {pos} id", nullable=True
            )
            name = ref.name or ""
            norm = norms.get(name)
            if norm is None:
                norm = norms[name] = normalise_name(name)
            if ref.artist_id is None and not norm:
                raise ValueError(
                    f"track record {i} ({rec.track_id}): artist {pos} has neither an id nor a name"
                )
            ref_track.append(rec.track_id)
            ref_ord.append(i)
            ref_pos.append(pos)
            ref_id.append(ref.artist_id)
            ref_name.append(name)
            ref_norm.append(norm)
    tracks = pa.table(
        {
            "ord": pa.array(range(len(records)), pa.int64()),
            **{k: pa.array(v, pa.string()) for k, v in cols.items() if k != "release_year"},
            "release_year": pa.array(cols["release_year"], pa.int16()),
            "popularity": pa.array(pops, pa.int16()),
            "duration_ms": pa.array(durations, pa.int32()),
            "n_artists": pa.array(n_artists, pa.int32()),
            "source": pa.array([r.source for r in records], pa.string()),
        }
    )
    refs = pa.table(
        {
            "track_id": pa.array(ref_track, pa.string()),
            "ord": pa.array(ref_ord, pa.int64()),
            "position": pa.array(ref_pos, pa.int16()),
            "artist_id": pa.array(ref_id, pa.string()),
            "name": pa.array(ref_name, pa.string()),
            "norm": pa.array(ref_norm, pa.string()),
        }
    )
    return tracks, refs


def _stage_features(records: Sequence[AudioFeatures]) -> pa.Table:
    # Later records for the same track override earlier ones feature by feature.
    merged: dict[str, dict[str, float]] = {}
    sources: dict[str, str] = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, AudioFeatures):
            raise TypeError(
                f"audio-feature record {i} must be an AudioFeatures, got {type(rec).__name__}"
            )
        _check_id(rec.track_id, f"audio-feature record {i}: track_id")
        merged.setdefault(rec.track_id, {}).update(rec.values)
        sources[rec.track_id] = rec.source
    ids = list(merged)
    return pa.table(
        {
            "track_id": pa.array(ids, pa.string()),
            **{f: pa.array([merged[t].get(f) for t in ids], pa.float32()) for f in AUDIO_FEATURES},
            "source": pa.array([sources[t] for t in ids], pa.string()),
        }
    )


class FactsWrites(CatalogBase):
    # staging ---------------------------------------------------------------------------
    @contextmanager
    def _staged(self, **tables: pa.Table) -> Iterator[None]:
        for name, table in tables.items():
            self.con.register(name, table)
        try:
            yield
        finally:
            for name in tables:
                unregister(self.con, name)

    # writes ----------------------------------------------------------------------------
    def upsert_facts(
        self,
        *,
        tracks: Sequence[TrackFacts] = (),
        artists: Sequence[ArtistFacts] = (),
        audio_features: Sequence[AudioFeatures] = (),
    ) -> FactsResult:
        """Write tracks, artists and audio features in one transaction (all or nothing).

        Artists first (so tracks resolve to them), then tracks, then audio features. See
        :meth:`upsert_tracks`, :meth:`upsert_artists` and :meth:`upsert_audio_features` for what
        each does. Raises ``ValueError``/``TypeError`` for a malformed record before writing.
        """
        stage_a = _stage_artists(artists)
        stage_t, stage_r = _stage_tracks(tracks)
        stage_f = _stage_features(audio_features)
        with (
            self._staged(
                fx_artists=stage_a, fx_tracks=stage_t, fx_refs=stage_r, fx_features=stage_f
            ),
            self.transaction(),
        ):
            a_new, a_upd = self._write_artists() if len(artists) else (0, 0)
            t_new, t_upd, t_skip, t_a_new = self._write_tracks() if len(tracks) else (0, 0, 0, 0)
            n_feat = self._write_audio_features() if len(audio_features) else 0
            self.merge_duplicate_artists()
        return FactsResult(t_new, t_upd, t_skip, a_new + t_a_new, a_upd, n_feat)

    def upsert_tracks(self, records: Sequence[TrackFacts]) -> int:
        """Add tracks the catalog does not know; fill only the missing fields of known ones.

        A new track needs a name and at least one artist (``records[i].artists[0]`` is its
        primary artist); an unknown track without them is skipped. Artists are resolved by id,
        else by normalised name, and created when unknown. Known tracks get only their NULL
        fields filled (name, album, release date and year, popularity, duration). Records with
        several artists write ``track_artists`` for tracks that have none yet. One transaction.

        Returns the number of tracks added.
        """
        return self.upsert_facts(tracks=records).tracks_new

    def upsert_artists(self, records: Sequence[ArtistFacts]) -> int:
        """Set genres and popularity of artists by id (by normalised name when the id is None).

        A provided non-None value overwrites the stored one (``genres=[]`` records that the
        artist has none), or only fills a NULL when the record has ``overwrite=False``; unknown
        artists are created. An id-known artist stored without a name
        gets the record's name. Returns the number of artists created.
        """
        return self.upsert_facts(artists=records).artists_new

    def upsert_audio_features(self, records: Sequence[AudioFeatures]) -> int:
        """Insert or replace audio features by track id; returns the number of tracks written.

        A feature the record does not carry keeps its stored value (a table without
        ``time_signature`` does not erase one fetched before).
        """
        return self.upsert_facts(audio_features=records).audio_features

    # artist resolution -----------------------------------------------------------------
    def _resolve_artists(self, src: str, source_sql: str, needed: str = "true") -> int:
        """Make sure every (artist_id, norm, name) of temp table ``src`` has an artist row.

        Rows where the SQL condition ``needed`` is false only teach known artists their id or
        name; they create no artist.

        Fills temp tables ``amap_id(artist_id, artist_key)`` and ``amap_norm(norm, artist_key)``.
        Returns the number of artists created.
        """
        con = self.con
        before = self.scalar("SELECT count(*) FROM artists")
        # A name-only artist learns its id when a record names it with one.
        con.execute(
            f"""
            UPDATE artists SET artist_id = s.artist_id, updated_at = current_timestamp
            FROM (
                SELECT norm, min(artist_id) AS artist_id FROM {src}
                WHERE artist_id IS NOT NULL AND norm <> ''
                  AND artist_id NOT IN (SELECT artist_id FROM artists WHERE artist_id IS NOT NULL)
                GROUP BY norm
            ) s
            WHERE artists.artist_id IS NULL AND artists.norm_name = s.norm
            """
        )
        # An artist stored by id only learns its name.
        con.execute(
            f"""
            UPDATE artists SET name = s.name, norm_name = s.norm, updated_at = current_timestamp
            FROM (
                SELECT artist_id, any_value(name) AS name, any_value(norm) AS norm FROM {src}
                WHERE artist_id IS NOT NULL AND norm <> '' GROUP BY artist_id
            ) s
            WHERE artists.artist_id = s.artist_id AND artists.norm_name = ''
            """
        )
        con.execute(
            f"""
            INSERT INTO artists (artist_key, artist_id, name, norm_name, source, updated_at)
            SELECT nextval('artist_key_seq'), artist_id, name, norm, source, current_timestamp
            FROM (SELECT artist_id, coalesce(arg_min(name, norm) FILTER (WHERE norm <> ''), '') AS name,
                         coalesce(min(norm) FILTER (WHERE norm <> ''), '') AS norm,
                         {source_sql} AS source
                  FROM {src} WHERE artist_id IS NOT NULL AND {needed} GROUP BY artist_id) s
            WHERE NOT EXISTS (SELECT 1 FROM artists a WHERE a.artist_id = s.artist_id)
            ORDER BY artist_id
            """
        )
        con.execute(
            f"""
            INSERT INTO artists (artist_key, artist_id, name, norm_name, source, updated_at)
            SELECT nextval('artist_key_seq'), NULL, name, norm, source, current_timestamp
            FROM (SELECT norm, min(name) AS name, {source_sql} AS source FROM {src}
                  WHERE artist_id IS NULL AND norm <> '' AND {needed} GROUP BY norm) s
            WHERE NOT EXISTS (SELECT 1 FROM artists a WHERE a.norm_name = s.norm)
            ORDER BY norm
            """
        )
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE amap_id AS
            SELECT a.artist_id, a.artist_key FROM artists a
            WHERE a.artist_id IN (SELECT artist_id FROM {src} WHERE artist_id IS NOT NULL)
            """
        )
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE amap_norm AS
            SELECT norm_name AS norm, min(artist_key) AS artist_key FROM artists
            WHERE norm_name IN (SELECT norm FROM {src} WHERE artist_id IS NULL AND norm <> '')
            GROUP BY norm_name
            """
        )
        return int(self.scalar("SELECT count(*) FROM artists") - before)

    def merge_duplicate_artists(self) -> int:
        """Fold name-only artists into the one id-known artist of the same normalised name.

        Happens when an artist was first stored by id without a name (a feature table) and by
        name without an id (a reduced MPD file), then learned its name. Tracks move to the
        id-known artist, which keeps its own facts and takes the other's where it has none.
        Returns the number of artists merged away. Call inside a transaction.
        """
        con = self.con
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE amerge AS
            SELECT n.artist_key AS old_key, i.artist_key AS new_key
            FROM artists n
            JOIN (SELECT norm_name, min(artist_key) AS artist_key FROM artists
                  WHERE artist_id IS NOT NULL AND norm_name <> ''
                  GROUP BY norm_name HAVING count(*) = 1) i USING (norm_name)
            WHERE n.artist_id IS NULL
            """
        )
        merged = int(self.scalar("SELECT count(*) FROM amerge"))
        if merged:
            con.execute(
                "UPDATE tracks SET artist_key = m.new_key FROM amerge m WHERE tracks.artist_key = m.old_key"
            )
            con.execute(
                "UPDATE track_artists SET artist_key = m.new_key FROM amerge m WHERE track_artists.artist_key = m.old_key"
            )
            con.execute(
                """
                UPDATE artists SET genres = coalesce(artists.genres, o.genres),
                                   popularity = coalesce(artists.popularity, o.popularity)
                FROM amerge m JOIN artists o ON o.artist_key = m.old_key
                WHERE artists.artist_key = m.new_key
                """
            )
            con.execute("DELETE FROM artists WHERE artist_key IN (SELECT old_key FROM amerge)")
        con.execute("DROP TABLE amerge")
        return merged

    def _write_artists(self) -> tuple[int, int]:
        con = self.con
        # One row per artist: by id, else by normalised name; the last non-null value wins.
        # ``*_over`` values overwrite the stored ones, ``*_fill`` values only fill a NULL.
        facts = """
                   arg_max(genres, ord) FILTER (WHERE genres IS NOT NULL AND overwrite) AS genres_over,
                   arg_max(genres, ord) FILTER (WHERE genres IS NOT NULL AND NOT overwrite) AS genres_fill,
                   arg_max(popularity, ord) FILTER (WHERE popularity IS NOT NULL AND overwrite) AS pop_over,
                   arg_max(popularity, ord) FILTER (WHERE popularity IS NOT NULL AND NOT overwrite) AS pop_fill,
                   arg_max(source, ord) AS source
        """
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE fa AS
            SELECT artist_id,
                   coalesce(arg_max(name, ord) FILTER (WHERE norm <> ''), '') AS name,
                   coalesce(arg_max(norm, ord) FILTER (WHERE norm <> ''), '') AS norm,
                   {facts}
            FROM fx_artists WHERE artist_id IS NOT NULL GROUP BY artist_id
            UNION ALL
            SELECT NULL, arg_max(name, ord), norm, {facts}
            FROM fx_artists WHERE artist_id IS NULL GROUP BY norm
            """
        )
        key_before = self.scalar("SELECT coalesce(max(artist_key), 0) FROM artists")
        created = self._resolve_artists("fa", "any_value(source)")
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE fa_keys AS
            SELECT m.artist_key, f.* EXCLUDE (artist_id, name, norm)
            FROM fa f JOIN amap_id m USING (artist_id)
            UNION ALL
            SELECT m.artist_key, f.* EXCLUDE (artist_id, name, norm)
            FROM fa f JOIN amap_norm m USING (norm) WHERE f.artist_id IS NULL
            """
        )
        has_facts = "coalesce(genres_over, genres_fill) IS NOT NULL OR coalesce(pop_over, pop_fill) IS NOT NULL"
        updated = int(
            self.scalar(
                """
                SELECT count(DISTINCT k.artist_key) FROM fa_keys k JOIN artists a USING (artist_key)
                WHERE k.artist_key <= ?
                  AND (k.genres_over IS NOT NULL OR k.pop_over IS NOT NULL
                       OR (k.genres_fill IS NOT NULL AND a.genres IS NULL)
                       OR (k.pop_fill IS NOT NULL AND a.popularity IS NULL))
                """,
                [key_before],
            )
        )
        con.execute(
            f"""
            UPDATE artists SET genres = coalesce(k.genres_over, artists.genres, k.genres_fill),
                               popularity = coalesce(k.pop_over, artists.popularity, k.pop_fill),
                               source = k.source, updated_at = current_timestamp
            FROM (SELECT artist_key, any_value(genres_over) AS genres_over,
                         any_value(genres_fill) AS genres_fill, any_value(pop_over) AS pop_over,
                         any_value(pop_fill) AS pop_fill, any_value(source) AS source
                  FROM fa_keys WHERE {has_facts} GROUP BY artist_key) k
            WHERE artists.artist_key = k.artist_key
            """
        )
        for t in ("fa", "fa_keys", "amap_id", "amap_norm"):
            con.execute(f"DROP TABLE {t}")
        return created, updated

    def _write_tracks(self) -> tuple[int, int, int, int]:
        con = self.con
        # One row per track; for each field the first non-null value in record order.
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE ft AS
            WITH g AS (
                SELECT track_id,
                       arg_min(name, ord) FILTER (WHERE name IS NOT NULL) AS name,
                       arg_min(album_id, ord) FILTER (WHERE album_id IS NOT NULL) AS album_id,
                       arg_min(album_name, ord) FILTER (WHERE album_name IS NOT NULL) AS album_name,
                       arg_min(release_date, ord) FILTER (WHERE release_date IS NOT NULL) AS release_date,
                       coalesce(arg_min(release_year, ord) FILTER (WHERE release_date IS NOT NULL),
                                arg_min(release_year, ord) FILTER (WHERE release_year IS NOT NULL)) AS release_year,
                       arg_min(popularity, ord) FILTER (WHERE popularity IS NOT NULL) AS popularity,
                       arg_min(duration_ms, ord) FILTER (WHERE duration_ms IS NOT NULL) AS duration_ms,
                       min(ord) FILTER (WHERE n_artists > 0) AS ref_ord,
                       max(n_artists) AS n_artists,
                       arg_min(source, ord) AS source
                FROM fx_tracks GROUP BY track_id
            )
            SELECT g.*, t.track_id IS NOT NULL AS known
            FROM g LEFT JOIN tracks t USING (track_id)
            """
        )
        # Artists of tracks that are known or can be created (a name and an artist). Those of a
        # known track only teach ids and names, unless they are needed for track_artists.
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE fr AS
            SELECT r.track_id, r.position, r.artist_id, r.name, r.norm, f.source,
                   NOT f.known OR f.n_artists > 1 AS needed
            FROM fx_refs r JOIN ft f ON f.track_id = r.track_id AND f.ref_ord = r.ord
            WHERE f.known OR f.name IS NOT NULL
            """
        )
        artists_new = self._resolve_artists("fr", "min(source)", "needed")
        tracks_before = self.scalar("SELECT count(*) FROM tracks")
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE fr_keys AS
            SELECT r.track_id, r.position, m.artist_key FROM fr r JOIN amap_id m USING (artist_id)
            UNION ALL
            SELECT r.track_id, r.position, m.artist_key FROM fr r JOIN amap_norm m USING (norm)
            WHERE r.artist_id IS NULL
            """
        )
        con.execute(
            """
            INSERT INTO tracks (track_id, name, artist_key, album_id, album_name, duration_ms,
                                release_date, release_year, popularity, source)
            SELECT f.track_id, f.name, k.artist_key, f.album_id, f.album_name, f.duration_ms,
                   f.release_date, f.release_year, f.popularity, f.source
            FROM ft f JOIN fr_keys k ON k.track_id = f.track_id AND k.position = 0
            WHERE NOT f.known AND f.name IS NOT NULL
            ORDER BY f.track_id
            """
        )
        new = int(self.scalar("SELECT count(*) FROM tracks") - tracks_before)
        skipped = int(self.scalar("SELECT count(*) FROM ft WHERE NOT known")) - new
        fill_cols = (
            "name",
            "album_id",
            "album_name",
            "release_date",
            "release_year",
            "popularity",
            "duration_ms",
        )
        fills = " OR ".join(f"({{t}}.{c} IS NULL AND f.{c} IS NOT NULL)" for c in fill_cols)
        updated = int(
            self.scalar(
                "SELECT count(*) FROM ft f JOIN tracks t USING (track_id) "
                f"WHERE f.known AND ({fills.format(t='t')})"
            )
        )
        if updated:
            sets = ", ".join(
                f"{c} = coalesce(tracks.{c}, f.{c})" for c in fill_cols if c != "release_year"
            )
            # A year known without a date (a chart year) gives way to the year of a real date.
            sets += """, release_year = CASE WHEN tracks.release_date IS NULL AND f.release_date IS NOT NULL
                                        THEN f.release_year ELSE coalesce(tracks.release_year, f.release_year) END"""
            con.execute(
                f"""
                UPDATE tracks SET {sets} FROM ft f
                WHERE tracks.track_id = f.track_id AND f.known AND ({fills.format(t="tracks")})
                """
            )
        con.execute(
            """
            INSERT INTO albums (album_id, name, release_date, release_year)
            SELECT album_id, arg_min(album_name, track_id), arg_min(release_date, track_id),
                   arg_min(release_year, track_id)
            FROM ft f WHERE album_id IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM albums a WHERE a.album_id = f.album_id)
            GROUP BY album_id ORDER BY album_id
            """
        )
        con.execute(
            """
            UPDATE albums SET name = coalesce(albums.name, s.name),
                              release_date = coalesce(albums.release_date, s.release_date),
                              release_year = coalesce(albums.release_year, s.release_year)
            FROM (SELECT album_id, min(album_name) AS name, min(release_date) AS release_date,
                         min(release_year) AS release_year
                  FROM ft WHERE album_id IS NOT NULL GROUP BY album_id) s
            WHERE albums.album_id = s.album_id
              AND ((albums.name IS NULL AND s.name IS NOT NULL)
                   OR (albums.release_date IS NULL AND s.release_date IS NOT NULL)
                   OR (albums.release_year IS NULL AND s.release_year IS NOT NULL))
            """
        )
        con.execute(
            """
            INSERT INTO track_artists (track_id, position, artist_key)
            SELECT k.track_id, k.position, k.artist_key
            FROM fr_keys k JOIN ft f USING (track_id)
            WHERE f.n_artists > 1
              AND EXISTS (SELECT 1 FROM tracks t WHERE t.track_id = k.track_id)
              AND NOT EXISTS (SELECT 1 FROM track_artists x WHERE x.track_id = k.track_id)
            ORDER BY k.track_id, k.position
            """
        )
        for t in ("ft", "fr", "fr_keys", "amap_id", "amap_norm"):
            con.execute(f"DROP TABLE {t}")
        return new, updated, skipped, artists_new

    def _write_audio_features(self) -> int:
        cols = ", ".join(f'"{f}"' for f in AUDIO_FEATURES)
        sets = ", ".join(
            f'"{f}" = coalesce(excluded."{f}", audio_features."{f}")' for f in AUDIO_FEATURES
        )
        self.con.execute(
            f"""
            INSERT INTO audio_features (track_id, {cols}, source, fetched_at)
            SELECT track_id, {cols}, source, current_timestamp FROM fx_features
            ON CONFLICT (track_id) DO UPDATE SET {sets}, source = excluded.source,
                fetched_at = excluded.fetched_at
            """
        )
        return int(self.scalar("SELECT count(*) FROM fx_features"))

    # what is missing, and the fetch log -------------------------------------------------
    def _attempt_filter(
        self, id_sql: str, kind: str, provider: str | None
    ) -> tuple[str, list[Any]]:
        if provider is None:
            return "", []
        kinds = list(_ATTEMPT_KINDS[kind])
        return (
            f"""AND NOT EXISTS (SELECT 1 FROM fetch_attempts fa WHERE fa.provider = ?
                    AND list_contains(?, fa.kind) AND fa.id = {id_sql}
                    AND fa.status IN ('not_found', 'unavailable'))""",
            [provider, kinds],
        )

    @staticmethod
    def _limit(limit: int | None) -> str:
        if limit is None:
            return ""
        if not isinstance(limit, int) or limit < 0:
            raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")
        return f"LIMIT {limit}"

    def tracks_missing(
        self, kind: str, limit: int | None = None, provider: str | None = None
    ) -> list[str]:
        """Track ids lacking a kind of fact, most-played first (then by id).

        ``kind``: ``"track_facts"`` (no release date or year) or ``"audio_features"``. With
        ``provider``, ids that provider already answered 'not_found' or 'unavailable' for are
        left out, so a resumed fetch asks only for what may still come.
        """
        if kind == "track_facts":
            where = "t.release_date IS NULL AND t.release_year IS NULL"
        elif kind == "audio_features":
            where = "NOT EXISTS (SELECT 1 FROM audio_features f WHERE f.track_id = t.track_id)"
        else:
            raise ValueError(f"unknown kind {kind!r}; expected one of {list(MISSING_KINDS)}")
        attempt, params = self._attempt_filter("t.track_id", kind, provider)
        rows = self.con.execute(
            f"""
            SELECT t.track_id FROM tracks t
            LEFT JOIN (SELECT track_id, count(*) AS n FROM playlist_tracks GROUP BY track_id) c
                   USING (track_id)
            WHERE {where} {attempt}
            ORDER BY coalesce(c.n, 0) DESC, t.track_id {self._limit(limit)}
            """,
            params,
        ).fetchall()
        return [r[0] for r in rows]

    def artists_missing_genres(
        self, limit: int | None = None, provider: str | None = None
    ) -> list[str]:
        """Ids of artists whose genres are not known (NULL), most-played first (then by id)."""
        attempt, params = self._attempt_filter("a.artist_id", "artist_genres", provider)
        rows = self.con.execute(
            f"""
            SELECT a.artist_id FROM artists a
            LEFT JOIN (SELECT t.artist_key, count(*) AS n FROM playlist_tracks r
                       JOIN tracks t USING (track_id) GROUP BY t.artist_key) c USING (artist_key)
            WHERE a.artist_id IS NOT NULL AND a.genres IS NULL {attempt}
            ORDER BY coalesce(c.n, 0) DESC, a.artist_id {self._limit(limit)}
            """,
            params,
        ).fetchall()
        return [r[0] for r in rows]

    def record_attempts(self, provider: str, kind: str, ids: Iterable[str], status: str) -> int:
        """Remember the outcome of asking ``provider`` for ``kind`` facts of ``ids``.

        ``status`` is 'ok', 'not_found' or 'unavailable'; a later attempt replaces an earlier
        one. Returns the number of ids recorded.
        """
        if status not in ATTEMPT_STATUSES:
            raise ValueError(f"status must be one of {list(ATTEMPT_STATUSES)}, got {status!r}")
        id_list = list(dict.fromkeys(ids))
        if not id_list:
            return 0
        stage = pa.table({"id": pa.array(id_list, pa.string())})
        with self._staged(fx_attempts=stage):
            self.con.execute(
                """
                INSERT OR REPLACE INTO fetch_attempts (provider, kind, id, status, logged_at)
                SELECT ?, ?, id, ?, current_timestamp FROM fx_attempts
                """,
                [provider, kind, status],
            )
        return len(id_list)

    def log_fetch(
        self,
        run_id: str | None,
        provider: str,
        kind: str,
        ids: Iterable[str],
        status: str,
        reason: str | None = None,
    ) -> None:
        """Append one line to the fetch log (one request or batch and its outcome)."""
        self.con.execute(
            "INSERT INTO fetch_log (logged_at, run_id, provider, kind, ids, status, reason) "
            "VALUES (current_timestamp, ?, ?, ?, ?, ?, ?)",
            [run_id, provider, kind, list(ids), status, reason],
        )

    def fetch_log_rows(self, limit: int | None = 100) -> list[dict[str, Any]]:
        """The newest fetch-log lines first, as dicts (``ids`` is a list of str)."""
        cur = self.con.execute(
            f"""
            SELECT logged_at, run_id, provider, kind, ids, status, reason FROM fetch_log
            ORDER BY logged_at DESC, rowid DESC {self._limit(limit)}
            """
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def added_tracks(self, limit: int | None = 100) -> list[dict[str, Any]]:
        """Tracks that came from outside the MPD slices (tables, Spotify, the demo), newest first."""
        cur = self.con.execute(
            f"""
            SELECT t.added_at, t.track_id, t.name, a.name AS artist, t.source
            FROM tracks t JOIN artists a USING (artist_key)
            WHERE t.source IS DISTINCT FROM 'mpd'
            ORDER BY t.added_at DESC, t.track_id {self._limit(limit)}
            """
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    # meta ------------------------------------------------------------------------------
    def set_meta(self, key: str, value: str | dict[str, Any]) -> None:
        """Store a setting in ``meta`` (a dict is stored as JSON)."""
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, text])

    def get_meta(self, key: str) -> str | None:
        return self.scalar("SELECT value FROM meta WHERE key = ?", [key])

    # reads for display and search ------------------------------------------------------
    def track_rows(self, track_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Display rows of the known ``track_ids``, in input order (unknown ids are left out).

        Each row: ``track_id``, ``name``, ``artist`` (primary artist name), ``artist_id``,
        ``artist_key``, ``artists`` (all artist names), ``album``, ``year`` (int or None),
        ``popularity`` (Spotify 0-100 or None), ``playlists`` (how many playlists hold it).
        """
        ids = list(dict.fromkeys(track_ids))
        if not ids:
            return []
        stage = pa.table(
            {"track_id": pa.array(ids, pa.string()), "ord": pa.array(range(len(ids)), pa.int64())}
        )
        with self._staged(fx_ids=stage):
            cur = self.con.execute(
                """
                SELECT q.track_id, t.name, a.name AS artist, a.artist_id, t.artist_key,
                       coalesce(ta.names, [a.name]) AS artists,
                       coalesce(t.album_name, al.name) AS album,
                       CAST(coalesce(t.release_year, al.release_year) AS INTEGER) AS year,
                       CAST(t.popularity AS INTEGER) AS popularity,
                       coalesce(c.n, 0) AS playlists
                FROM fx_ids q
                JOIN tracks t USING (track_id)
                JOIN artists a ON a.artist_key = t.artist_key
                LEFT JOIN albums al ON al.album_id = t.album_id
                LEFT JOIN (SELECT x.track_id, list(ar.name ORDER BY x.position) AS names
                           FROM track_artists x JOIN artists ar USING (artist_key)
                           WHERE x.track_id IN (SELECT track_id FROM fx_ids)
                           GROUP BY x.track_id) ta ON ta.track_id = q.track_id
                LEFT JOIN (SELECT track_id, count(*) AS n FROM playlist_tracks
                           WHERE track_id IN (SELECT track_id FROM fx_ids) GROUP BY track_id) c
                       ON c.track_id = q.track_id
                ORDER BY q.ord
                """
            )
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def search_tracks(self, query: str, limit: int = 20) -> list[dict[str, Any]]:
        """Tracks whose ``name + artist`` contains every word of ``query`` (case-insensitive),
        most-played first; rows as :meth:`track_rows`."""
        words = query.casefold().split()
        if not words:
            return []
        cond = " AND ".join(["contains(lower(t.name || ' ' || a.name), ?)"] * len(words))
        rows = self.con.execute(
            f"""
            WITH hits AS (
                SELECT t.track_id FROM tracks t JOIN artists a USING (artist_key)
                WHERE t.name IS NOT NULL AND {cond}
            )
            SELECT h.track_id FROM hits h
            LEFT JOIN (SELECT track_id, count(*) AS n FROM playlist_tracks
                       WHERE track_id IN (SELECT track_id FROM hits) GROUP BY track_id) c
                   USING (track_id)
            ORDER BY coalesce(c.n, 0) DESC, h.track_id {self._limit(limit)}
            """,
            words,
        ).fetchall()
        return self.track_rows([r[0] for r in rows])

    def _artist_rows(
        self, where: str, params: list[Any], limit: int | None
    ) -> list[dict[str, Any]]:
        cur = self.con.execute(
            f"""
            WITH hits AS (SELECT * FROM artists a WHERE a.norm_name <> '' AND {where})
            SELECT h.artist_key, h.artist_id, h.name, h.genres, CAST(h.popularity AS INTEGER) AS popularity,
                   coalesce(c.playlists, 0) AS playlists, coalesce(c.tracks, 0) AS tracks
            FROM hits h
            LEFT JOIN (SELECT t.artist_key, count(DISTINCT r.pid) AS playlists,
                              count(DISTINCT t.track_id) AS tracks
                       FROM tracks t LEFT JOIN playlist_tracks r USING (track_id)
                       WHERE t.artist_key IN (SELECT artist_key FROM hits)
                       GROUP BY t.artist_key) c USING (artist_key)
            ORDER BY coalesce(c.playlists, 0) DESC, h.name, h.artist_key {self._limit(limit)}
            """,
            params,
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def search_artists(self, query: str, limit: int = 20) -> list[dict[str, Any]]:
        """Artists whose normalised name contains ``query`` (normalised), most-played first.

        Rows: ``artist_key``, ``artist_id``, ``name``, ``genres`` (list or None), ``popularity``,
        ``playlists`` (distinct playlists holding one of their tracks), ``tracks``.
        """
        norm = normalise_name(query)
        if not norm:
            return []
        return self._artist_rows("contains(a.norm_name, ?)", [norm], limit)

    def artist_by_ref(self, id_or_name: str) -> dict[str, Any] | None:
        """An artist by Spotify link/URI/id, else by exact normalised name (the most played one)."""
        ref = try_parse(id_or_name, Kind.ARTIST)
        if ref is not None:
            rows = self._artist_rows("a.artist_id = ?", [ref.id], 1)
            if rows:
                return rows[0]
        norm = normalise_name(id_or_name)
        if not norm:
            return None
        rows = self._artist_rows("a.norm_name = ?", [norm], 1)
        return rows[0] if rows else None

    # catalog-derived facts -------------------------------------------------------------
    def track_playlist_counts(self) -> pa.Table:
        """``track_id``, ``playlists`` (int64: playlists holding the track) for every track."""
        return self.con.sql(
            """
            SELECT t.track_id, coalesce(c.n, 0) AS playlists FROM tracks t
            LEFT JOIN (SELECT track_id, count(DISTINCT pid) AS n FROM playlist_tracks GROUP BY track_id) c
                   USING (track_id)
            ORDER BY t.track_id
            """
        ).to_arrow_table()

    def artist_playlist_counts(self) -> pa.Table:
        """``artist_key``, ``artist_id``, ``playlists`` (distinct playlists holding one of the
        artist's tracks as primary artist) for every artist."""
        return self.con.sql(
            """
            SELECT a.artist_key, a.artist_id, coalesce(c.n, 0) AS playlists FROM artists a
            LEFT JOIN (SELECT t.artist_key, count(DISTINCT r.pid) AS n FROM playlist_tracks r
                       JOIN tracks t USING (track_id) GROUP BY t.artist_key) c USING (artist_key)
            ORDER BY a.artist_key
            """
        ).to_arrow_table()


__all__ = ["ATTEMPT_STATUSES", "MISSING_KINDS", "FactsResult", "FactsWrites"]
