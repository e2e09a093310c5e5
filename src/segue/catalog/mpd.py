"""Catalog writes for MPD slices: one file in one transaction, all or nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from segue.catalog.core import CatalogBase, normalise_name
from segue.errors import InputFileError

if TYPE_CHECKING:
    from segue.mpd import SliceColumns


# The fields that make a playlist the same playlist (besides its track list), as one string.
_PLAYLIST_IDENTITY = (
    "concat_ws(chr(31), {t}.name, {t}.description, {t}.collaborative, {t}.modified_at, "
    "{t}.num_tracks, {t}.num_albums, {t}.num_followers, {t}.num_edits, {t}.duration_ms, "
    "{t}.num_artists)"
)


@dataclass(frozen=True)
class SliceResult:
    path: str
    status: str  # 'added' | 'unchanged'
    playlists: int = 0
    rows: int = 0
    duplicates: int = 0  # playlists already present with identical content
    new_tracks: int = 0
    salvaged: bool = False


class MpdWrites(CatalogBase):
    def file_already_ingested(self, content_hash: str) -> str | None:
        rows = self.con.execute(
            "SELECT path FROM ingested_files WHERE content_hash = ?", [content_hash]
        ).fetchall()
        return rows[0][0] if rows else None

    def add_slice(self, cols: SliceColumns, *, resolve: bool = True) -> SliceResult:
        """Add one validated slice. Idempotent by content hash; raises on a pid conflict.

        A playlist whose pid is already in the catalog with identical content is skipped (and
        counted in ``duplicates``); with different content the whole file is refused.

        The playlists and their rows go in in one transaction; the file's tracks are staged and
        merged into ``tracks``/``artists``/``albums`` by :meth:`resolve_staged` (right away
        unless ``resolve=False``: bulk ingest merges many files at once, which keeps the cost
        per file independent of the catalog's size).
        """
        previous = self.file_already_ingested(cols.content_hash)
        if previous is not None:
            return SliceResult(cols.path, "unchanged")
        con = self.con
        con.register("stage_pl_raw", cols.playlists)
        con.register("stage_rows", cols.rows)
        try:
            with self.transaction():
                result = self._add_staged(cols)
        finally:
            con.unregister("stage_pl_raw")
            con.unregister("stage_rows")
        if resolve:
            self.resolve_staged()
        return result

    def _add_staged(self, cols: SliceColumns) -> SliceResult:
        con = self.con
        con.execute("CREATE OR REPLACE TEMP VIEW stage_pl AS SELECT * FROM stage_pl_raw")
        # A pid already in the catalog must hold the same playlist: its fields and its track
        # list in order. Compared only for colliding pids (rare), so the usual file pays nothing.
        collide = self.scalar(
            "SELECT count(*) FROM stage_pl s SEMI JOIN playlists p ON p.pid = s.pid"
        )
        conflicts = []
        if collide:
            conflicts = con.execute(
                f"""
                WITH new AS (
                    SELECT s.pid, {_PLAYLIST_IDENTITY.format(t="s")} AS ident,
                           coalesce((SELECT string_agg(track_id, ',' ORDER BY pos, track_id)
                                     FROM stage_rows r WHERE r.pid = s.pid), '') AS tracks
                    FROM stage_pl s SEMI JOIN playlists p ON p.pid = s.pid
                ), old AS (
                    SELECT p.pid, p.file_id, {_PLAYLIST_IDENTITY.format(t="p")} AS ident,
                           coalesce((SELECT string_agg(track_id, ',' ORDER BY pos, track_id)
                                     FROM playlist_tracks r WHERE r.pid = p.pid), '') AS tracks
                    FROM playlists p SEMI JOIN stage_pl s ON s.pid = p.pid
                )
                SELECT new.pid, f.path FROM new JOIN old USING (pid)
                LEFT JOIN ingested_files f ON f.file_id = old.file_id
                WHERE new.ident <> old.ident OR new.tracks <> old.tracks
                ORDER BY new.pid LIMIT 1
                """
            ).fetchall()
        if conflicts:
            pid, other = conflicts[0]
            raise InputFileError(
                cols.path,
                f"playlist pid {pid}",
                f"pid {pid} was already ingested from {other or 'another source'} with different content",
            )
        if duplicates_possible := bool(collide):
            con.execute(
                """
                CREATE OR REPLACE TEMP TABLE new_pl AS
                SELECT s.* FROM stage_pl s ANTI JOIN playlists p ON p.pid = s.pid
                """
            )
            con.execute(
                "CREATE OR REPLACE TEMP TABLE file_rows AS SELECT r.* FROM stage_rows r SEMI JOIN new_pl USING (pid)"
            )
        else:
            # The usual case: no playlist of this file is in the catalog yet; no copies needed.
            con.execute("CREATE OR REPLACE TEMP VIEW new_pl AS SELECT * FROM stage_pl")
            con.execute("CREATE OR REPLACE TEMP VIEW file_rows AS SELECT * FROM stage_rows")
        n_new_pl = self.scalar("SELECT count(*) FROM new_pl")
        duplicates = cols.n_playlists - n_new_pl
        file_id = self.scalar("SELECT coalesce(max(file_id), 0) + 1 FROM ingested_files")
        con.execute(
            """
            INSERT INTO playlists
            SELECT pid, name, description, collaborative, modified_at, num_tracks, num_albums,
                   num_followers, num_edits, duration_ms, num_artists, ?
            FROM new_pl
            """,
            [file_id],
        )
        con.execute("INSERT INTO playlist_tracks SELECT pid, pos, track_id FROM file_rows")
        con.execute(
            """
            INSERT INTO staged_tracks
            SELECT track_id, track_name, artist_name, artist_id, album_id, album_name, duration_ms
            FROM file_rows
            """
        )
        n_rows = self.scalar("SELECT count(*) FROM file_rows")
        con.execute(
            "INSERT INTO ingested_files (file_id, path, content_hash, playlists, rows, salvaged) VALUES (?, ?, ?, ?, ?, ?)",
            [file_id, cols.path, cols.content_hash, n_new_pl, n_rows, cols.salvaged],
        )
        kind = "TABLE" if duplicates_possible else "VIEW"
        con.execute(f"DROP {kind} new_pl")
        con.execute(f"DROP {kind} file_rows")
        con.execute("DROP VIEW stage_pl")
        return SliceResult(cols.path, "added", n_new_pl, n_rows, duplicates, 0, cols.salvaged)

    def _after_open(self) -> None:
        super()._after_open()
        self.resolve_staged()

    def staged_rows(self) -> int:
        """Playlist rows whose tracks are not merged into the track tables yet."""
        return int(self.scalar("SELECT count(*) FROM staged_tracks"))

    def resolve_staged(self) -> int:
        """Merge staged tracks into ``artists``, ``tracks`` and ``albums`` in one transaction.

        Returns the number of new tracks. Runs after an ingest, and when a catalog left with
        staged rows by an interrupted ingest is opened for writing.
        """
        if not self.staged_rows():
            return 0
        con = self.con
        with self.transaction():
            # Normalise each distinct artist name once (NFKC + casefold has no SQL equivalent).
            names = con.sql("SELECT DISTINCT artist_name FROM staged_tracks").to_arrow_table()[
                "artist_name"
            ]
            norm_table = pa.table(
                {
                    "artist_name": names,
                    "norm": pa.array([normalise_name(n) for n in names.to_pylist()], pa.string()),
                }
            )
            con.register("name_norm", norm_table)
            try:
                con.execute(
                    """
                    CREATE OR REPLACE TEMP TABLE new_rows AS
                    SELECT s.*, m.norm FROM staged_tracks s JOIN name_norm m USING (artist_name)
                    """
                )
            finally:
                con.unregister("name_norm")
            self._upsert_artists()
            new_tracks = self._insert_tracks()
            con.execute("DELETE FROM staged_tracks")
            con.execute("DROP TABLE new_rows")
            con.execute("DROP TABLE IF EXISTS sa")
            con.execute("DROP TABLE IF EXISTS amap")
        return new_tracks

    def _upsert_artists(self) -> None:
        """Artists by Spotify id where known, else by normalised name; learn ids for name-only ones."""
        con = self.con
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE sa AS
            SELECT artist_id, norm, any_value(artist_name) AS name
            FROM new_rows GROUP BY artist_id, norm
            """
        )
        # Each fix-up below runs only when the catalog has rows it could apply to, so a file
        # costs O(its own rows) rather than a scan of every artist.
        # A name-only artist learns its id when a file names it with one.
        if self.scalar("SELECT count(*) FROM artists WHERE artist_id IS NULL"):
            con.execute(
                """
            UPDATE artists SET artist_id = s.artist_id
            FROM (
                SELECT norm, min(artist_id) AS artist_id FROM sa
                WHERE artist_id IS NOT NULL
                  AND artist_id NOT IN (SELECT artist_id FROM artists WHERE artist_id IS NOT NULL)
                GROUP BY norm
            ) s
            WHERE artists.artist_id IS NULL AND artists.norm_name = s.norm
            """
            )
        # An artist stored by id only (a feature table without names) learns its name.
        if self.scalar("SELECT count(*) FROM artists WHERE norm_name = ''"):
            con.execute(
                """
            UPDATE artists SET name = s.name, norm_name = s.norm
            FROM (SELECT artist_id, any_value(name) AS name, any_value(norm) AS norm FROM sa
                  WHERE artist_id IS NOT NULL AND norm <> '' GROUP BY artist_id) s
            WHERE artists.artist_id = s.artist_id AND artists.norm_name = ''
            """
            )
        con.execute(
            """
            INSERT INTO artists (artist_key, artist_id, name, norm_name, source, updated_at)
            SELECT nextval('artist_key_seq'), artist_id, name, norm, 'mpd', current_timestamp
            FROM (SELECT artist_id, any_value(name) AS name, any_value(norm) AS norm
                  FROM sa WHERE artist_id IS NOT NULL GROUP BY artist_id) s
            WHERE NOT EXISTS (SELECT 1 FROM artists a WHERE a.artist_id = s.artist_id)
            """
        )
        if self.scalar("SELECT count(*) FROM sa WHERE artist_id IS NULL"):
            con.execute(
                """
            INSERT INTO artists (artist_key, artist_id, name, norm_name, source, updated_at)
            SELECT nextval('artist_key_seq'), NULL, name, norm, 'mpd', current_timestamp
            FROM (SELECT norm, any_value(name) AS name FROM sa WHERE artist_id IS NULL GROUP BY norm) s
            WHERE NOT EXISTS (SELECT 1 FROM artists a WHERE a.norm_name = s.norm)
            """
            )
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE amap AS
            SELECT s.artist_id, s.norm, a.artist_key
            FROM sa s JOIN artists a ON a.artist_id = s.artist_id
            WHERE s.artist_id IS NOT NULL
            UNION ALL
            SELECT s.artist_id, s.norm, n.artist_key
            FROM sa s JOIN (
                SELECT norm_name, min(artist_key) AS artist_key FROM artists
                WHERE norm_name IN (SELECT norm FROM sa WHERE artist_id IS NULL)
                GROUP BY norm_name
            ) n ON n.norm_name = s.norm
            WHERE s.artist_id IS NULL
            """
        )

    def _insert_tracks(self) -> int:
        con = self.con
        before = self.scalar("SELECT count(*) FROM tracks")
        con.execute(
            """
            INSERT OR IGNORE INTO tracks (track_id, name, artist_key, album_id, album_name, duration_ms, source)
            SELECT r.track_id, any_value(r.track_name), any_value(m.artist_key),
                   any_value(r.album_id), any_value(r.album_name), any_value(r.duration_ms), 'mpd'
            FROM new_rows r
            JOIN amap m ON m.norm = r.norm AND m.artist_id IS NOT DISTINCT FROM r.artist_id
            GROUP BY r.track_id
            """
        )
        # Tracks first seen in a reduced file learn their album and duration from a full one.
        if self.scalar("SELECT count(*) FROM tracks WHERE album_id IS NULL"):
            con.execute(
                """
            UPDATE tracks SET album_id = s.album_id,
                              album_name = coalesce(tracks.album_name, s.album_name),
                              duration_ms = coalesce(tracks.duration_ms, s.duration_ms)
            FROM (SELECT track_id, any_value(album_id) AS album_id, any_value(album_name) AS album_name,
                         any_value(duration_ms) AS duration_ms
                  FROM new_rows WHERE album_id IS NOT NULL GROUP BY track_id) s
            WHERE tracks.track_id = s.track_id AND tracks.album_id IS NULL
            """
            )
        con.execute(
            """
            INSERT OR IGNORE INTO albums (album_id, name)
            SELECT album_id, any_value(album_name) FROM new_rows
            WHERE album_id IS NOT NULL
            GROUP BY album_id
            """
        )
        after = self.scalar("SELECT count(*) FROM tracks")
        return int(after - before)
