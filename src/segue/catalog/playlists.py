"""Catalog writes for MPD slices: one file in one transaction, all or nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segue.catalog.core import CatalogBase, unregister
from segue.core.errors import InputFileError
from segue.core.text import normalise_names

if TYPE_CHECKING:
    from segue.formats.mpd import DistinctRows, IdKeys, SliceColumns


# The fields that make a playlist the same playlist (besides its track list), as one string.
_PLAYLIST_IDENTITY = (
    "concat_ws(chr(31), {t}.name, {t}.description, {t}.collaborative, {t}.modified_at, "
    "{t}.num_tracks, {t}.num_albums, {t}.num_followers, {t}.num_edits, {t}.duration_ms, "
    "{t}.num_artists)"
)
# Arrow tables a file's writes read, registered for the length of its transaction.
_STAGED = ("stage_pl", "stage_rows", "file_tracks", "file_artists", "file_albums")


@dataclass(frozen=True)
class SliceResult:
    path: str
    status: str  # 'added' | 'unchanged'
    playlists: int = 0
    rows: int = 0
    duplicates: int = 0  # playlists already present with identical content
    new_tracks: int = 0
    salvaged: bool = False
    nulled: int = 0  # optional values given but unusable, stored as NULL
    renumbered: int = 0  # playlists stored in list order (their positions were unusable)


class KnownIds:
    """The ids of one catalog column as sorted 128-bit keys (:func:`segue.formats.mpd.id_keys`), so
    that an ingest run finds a file's new tracks, albums and artists with a binary search
    instead of an anti-join that scans the whole table for every file (which grows with the
    catalog), with an optional value per id (an artist's key).

    Hand-written on numpy because pyarrow's (and polars') ``is_in`` build a hash set of the other
    side on every call, here the whole catalog. ``first`` (sorted, unique) holds the first
    64-bit hash of each id, ``second`` the other hash of the same id. An id is known when both
    hashes match. Should two different ids ever share a first hash (the set could then not
    tell them apart), :meth:`new_mask` returns None and the caller falls back on the exact
    anti-join.
    """

    def __init__(
        self,
        first: np.ndarray[Any, Any],
        second: np.ndarray[Any, Any],
        values: np.ndarray[Any, Any] | None = None,
    ) -> None:
        self.first = first
        self.second = second
        self.values = values

    @classmethod
    def of_query(cls, con: Any, sql: str) -> KnownIds | None:
        """The keys of the ids a query returns (distinct, non-NULL; a second column is their
        values); None if one is not a 22-byte id or two share a first hash."""
        from segue.formats.mpd import fixed_ids, id_keys

        # In batches: only the keys (16 bytes an id) of the whole column are held at once.
        relation = con.sql(sql)
        with_values = len(relation.columns) > 1
        firsts, seconds, values = [np.zeros(0, np.uint64)], [np.zeros(0, np.uint64)], []
        for batch in relation.to_arrow_reader(1 << 18):
            ids = fixed_ids(batch.column(0))
            if ids is None:
                return None
            keys = id_keys(ids)
            firsts.append(keys[0])
            seconds.append(keys[1])
            if with_values:
                values.append(batch.column(1).to_numpy())
        first, second = np.concatenate(firsts), np.concatenate(seconds)
        order = np.argsort(first, kind="stable")
        first, second = first[order], second[order]
        if len(first) > 1 and not (first[1:] != first[:-1]).all():
            return None
        if not with_values:
            return cls(first, second)
        return cls(first, second, np.concatenate(values or [np.zeros(0, np.int64)])[order])

    def new_mask(self, keys: IdKeys) -> tuple[np.ndarray[Any, np.dtype[np.bool_]], NewKeys] | None:
        """For ``keys`` (of distinct ids): True for the ids the set lacks, and those ids' keys
        for :meth:`add`. None when the set cannot decide exactly (two different ids with the
        same first hash). With values, :attr:`NewKeys.found` holds the values of the others."""
        first, second = keys
        order = np.argsort(first)
        first, second = first[order], second[order]
        if len(first) > 1 and not (first[1:] != first[:-1]).all():
            return None
        # Sorted queries: numpy's binary search starts from the last answer.
        pos = np.searchsorted(self.first, first)
        if len(self.first):
            at = np.minimum(pos, len(self.first) - 1)
            same_first = self.first[at] == first
            if (same_first & (self.second[at] != second)).any():
                return None
        else:
            at = pos
            same_first = np.zeros(len(first), dtype=bool)
        new_sorted = ~same_first
        mask = np.empty(len(first), dtype=bool)
        mask[order] = new_sorted
        found = None
        if self.values is not None:
            # The values of the known ids, in the order of ``keys``.
            found = np.empty(len(first), dtype=self.values.dtype)
            found[order[same_first]] = self.values[at[same_first]]
        return mask, NewKeys(
            first[new_sorted],
            second[new_sorted],
            pos[new_sorted],
            self.size,
            order[new_sorted],
            found,
        )

    @property
    def size(self) -> int:
        return len(self.first)

    def add(self, new: NewKeys) -> None:
        """Add the keys :meth:`new_mask` found new (their insertion points hold while nothing
        was added in between), with their values when the set has values."""
        if not len(new.first):
            return
        pos = new.pos if new.size == self.size else np.searchsorted(self.first, new.first)
        self.first = np.insert(self.first, pos, new.first)
        self.second = np.insert(self.second, pos, new.second)
        if self.values is not None:
            assert new.values is not None, "values for the new ids"
            self.values = np.insert(self.values, pos, new.values)


@dataclass
class NewKeys:
    """Keys of ids a :class:`KnownIds` of ``size`` keys lacks, sorted by first hash, with their
    insertion points and their rows in the query (``rows``); ``found`` holds, for a set with
    values, the values of the query's known ids (by query row). ``values`` (set by the writer
    before :meth:`KnownIds.add`) holds the new ids' values, in the order of ``first``."""

    first: np.ndarray[Any, np.dtype[np.uint64]]
    second: np.ndarray[Any, np.dtype[np.uint64]]
    pos: np.ndarray[Any, np.dtype[np.intp]]
    size: int
    rows: np.ndarray[Any, np.dtype[np.intp]] | None = None
    found: np.ndarray[Any, Any] | None = None
    values: np.ndarray[Any, Any] | None = None


@dataclass
class IngestRun:
    """What one ingest run knows of the catalog it writes to: the ids of its tracks and albums,
    and its artists' ids with their keys.

    Valid only while the run is the catalog's only writer (ingest holds the file's write lock
    and writes nothing else on its connection); keys join the sets once their file commits.
    A set is None when it cannot decide exactly; the writer then anti-joins against the table
    as it does without a run. ``artists`` is dropped once a file's artists took the SQL path
    (an artist known by name only, or one without a name), which the set does not follow.
    """

    tracks: KnownIds | None
    albums: KnownIds | None
    artists: KnownIds | None = None
    #: Whether the catalog may hold artists without an id, artists without a name, and
    #: tracks without an album: the writer's fix-ups for them run only then.
    fixups: tuple[bool, bool, bool] = (True, True, True)
    pending: list[tuple[KnownIds, NewKeys]] = field(default_factory=list)
    pending_fixups: tuple[bool, bool, bool] | None = None
    drop_artists: bool = False

    def commit(self) -> None:
        for known, keys in self.pending:
            known.add(keys)
        self.pending.clear()
        if self.drop_artists:
            self.artists = None
        if self.pending_fixups is not None:
            self.fixups = self.pending_fixups
        self.abandon()

    def abandon(self) -> None:
        self.pending.clear()
        self.drop_artists = False
        self.pending_fixups = None


def _has_blank_name(distinct: DistinctRows, has_no_id: bool) -> bool:
    """Whether an artist of the file normalises to '' (stored as an artist without a name)."""
    if pc.any(pc.equal(distinct.artist_first["norm"], "")).as_py():
        return True
    if not has_no_id:
        return False
    rows = distinct.rows
    names = pc.unique(rows["artist_name"].filter(pc.is_null(rows["artist_id"])))
    return bool(pc.any(pc.equal(normalise_names(names), "")).as_py())


class MpdWrites(CatalogBase):
    def file_already_ingested(self, content_hash: str) -> str | None:
        rows = self.con.execute(
            "SELECT path FROM ingested_files WHERE content_hash = ?", [content_hash]
        ).fetchall()
        return rows[0][0] if rows else None

    def start_ingest_run(self) -> IngestRun:
        """The catalog's track, album and artist ids in memory, and what its fix-ups could
        apply to, for :meth:`add_slice` calls that follow with nothing else writing in between."""
        return IngestRun(
            tracks=KnownIds.of_query(self.con, "SELECT track_id FROM tracks"),
            albums=KnownIds.of_query(self.con, "SELECT album_id FROM albums"),
            artists=KnownIds.of_query(
                self.con,
                "SELECT artist_id, min(artist_key) FROM artists WHERE artist_id IS NOT NULL "
                "GROUP BY artist_id",
            ),
            fixups=self._fixups(),
        )

    def _fixups(self) -> tuple[bool, bool, bool]:
        """Whether the catalog holds artists without an id, artists without a name, and tracks
        without an album (one scan of artists, and of tracks until one is found)."""
        name_only, id_only, no_album = self.con.execute(
            """
            SELECT (SELECT count(*) FROM artists WHERE artist_id IS NULL),
                   (SELECT count(*) FROM artists WHERE norm_name = ''),
                   (SELECT count(*) FROM (SELECT 1 FROM tracks WHERE album_id IS NULL LIMIT 1))
            """
        ).fetchall()[0]
        return bool(name_only), bool(id_only), bool(no_album)

    def add_slice(self, cols: SliceColumns, run: IngestRun | None = None) -> SliceResult:
        """Add one validated slice in one transaction. Idempotent by content hash; raises on a
        pid conflict.

        A playlist whose pid is already in the catalog with identical content is skipped (and
        counted in ``duplicates``); with different content the whole file is refused.

        The playlists, their rows and the tracks, artists and albums the catalog does not know
        yet commit together, so a file interrupted half-way leaves nothing behind. A file costs
        O(its own rows) plus one scan of the catalog's track and album ids (a hash anti-join: no
        index is maintained per row); within an :class:`IngestRun` (``run``), O(its own rows)
        and a binary search per distinct track and album in the run's sorted keys.
        """
        previous = self.file_already_ingested(cols.content_hash)
        if previous is not None:
            return SliceResult(cols.path, "unchanged")
        if self.in_transaction:
            # Part of a caller's transaction, which may still roll back: the run's sets learn
            # only from commits, so the catalog decides here.
            run = None
        con = self.con
        con.register("stage_pl", cols.playlists)
        con.register("stage_rows", cols.rows)
        try:
            with self.transaction():
                result = self._add_staged(cols, run)
        except BaseException:
            if run is not None:
                run.abandon()
            raise
        finally:
            for name in _STAGED:
                unregister(con, name)
        if run is not None:
            run.commit()
        return result

    def _add_staged(self, cols: SliceColumns, run: IngestRun | None) -> SliceResult:
        from segue.formats.mpd import distinct_rows

        con = self.con
        # A pid already in the catalog must hold the same playlist: its fields and its track
        # list in order. Compared only for colliding pids (rare), so the usual file pays nothing.
        collide = self.scalar(
            "SELECT count(*) FROM stage_pl s SEMI JOIN playlists p ON p.pid = s.pid"
        )
        if collide:
            self._refuse_conflicts(cols.path)
            # Only the playlists not in the catalog yet go in.
            con.execute(
                "CREATE OR REPLACE TEMP TABLE new_pl AS "
                "SELECT s.* FROM stage_pl s ANTI JOIN playlists p ON p.pid = s.pid"
            )
            rows = con.sql(
                "SELECT r.* FROM stage_rows r SEMI JOIN new_pl USING (pid)"
            ).to_arrow_table()
            con.unregister("stage_rows")
            con.register("stage_rows", rows)
            playlists, distinct = "new_pl", distinct_rows(rows)
            n_new_pl, n_rows = int(self.scalar("SELECT count(*) FROM new_pl")), rows.num_rows
        else:
            # The usual case: no playlist of this file is in the catalog yet.
            playlists, distinct = "stage_pl", cols.distinct
            n_new_pl, n_rows = cols.n_playlists, cols.n_rows
        file_id = self.scalar("SELECT coalesce(max(file_id), 0) + 1 FROM ingested_files")
        con.execute(
            f"""
            INSERT INTO playlists
            SELECT pid, name, description, collaborative, modified_at, num_tracks, num_albums,
                   num_followers, num_edits, duration_ms, num_artists, ?
            FROM {playlists}
            """,
            [file_id],
        )
        con.execute("INSERT INTO playlist_tracks SELECT pid, pos, track_id FROM stage_rows")
        new_tracks = self._merge_tracks(distinct, run) if n_rows else 0
        con.execute(
            "INSERT INTO ingested_files (file_id, path, content_hash, playlists, rows, salvaged) VALUES (?, ?, ?, ?, ?, ?)",
            [file_id, cols.path, cols.content_hash, n_new_pl, n_rows, cols.salvaged],
        )
        if collide:
            con.execute("DROP TABLE new_pl")
        return SliceResult(
            cols.path,
            "added",
            n_new_pl,
            n_rows,
            cols.n_playlists - n_new_pl,
            new_tracks,
            cols.salvaged,
            cols.nulled,
            cols.renumbered,
        )

    def _refuse_conflicts(self, path: str) -> None:
        """Raise when a staged pid is in the catalog with other fields or another track list."""
        conflicts = self.con.execute(
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
                path,
                f"playlist pid {pid}",
                f"pid {pid} was already ingested from {other or 'another source'} with different content",
            )

    def _merge_tracks(self, distinct: DistinctRows, run: IngestRun | None = None) -> int:
        """Add the file's tracks, artists and albums that the catalog lacks; returns the number
        of new tracks.

        Runs inside the file's transaction. Only the file's distinct tracks, artists and albums
        (computed before, outside the database) are compared with the catalog, by hash
        anti-joins built on the file's side (or, within ``run``, by the run's sorted keys), and
        only new ones are written.
        """
        con = self.con
        file_tracks, anti_tracks, track_rows = self._only_new(
            run, run.tracks if run else None, distinct.tracks, distinct.track_keys
        )
        file_albums, anti_albums, _ = self._only_new(
            run, run.albums if run else None, distinct.albums, distinct.album_keys
        )
        # What the rarely needed fix-ups below could apply to: known to the run, else asked.
        name_only, id_only, no_album = run.fixups if run is not None else self._fixups()
        has_no_id = distinct.rows["artist_id"].null_count > 0
        if run is not None:
            # This file may add artists without an id, artists without a name (a blank one
            # normalises to ''), and tracks without an album.
            no_album_after = no_album or distinct.tracks["album_id"].null_count > 0
            run.pending_fixups = (
                name_only or has_no_id,
                id_only or _has_blank_name(distinct, has_no_id),
                no_album_after,
            )
        keys = None
        if run is not None and run.artists is not None and not (name_only or id_only or has_no_id):
            keys = self._add_artists_by_id(distinct, run, run.artists)
        if keys is not None:
            # Every artist has an id the run knows now: each new track's key, from memory.
            rows = np.arange(len(distinct.track_artist)) if track_rows is None else track_rows
            file_tracks = file_tracks.append_column(
                "artist_key", pa.array(keys[distinct.track_artist[rows]])
            )
            con.register("file_tracks", file_tracks)
            source, artist_key = "file_tracks f", "f.artist_key"
        else:
            if run is not None:
                run.drop_artists = True
            con.register("file_tracks", file_tracks)
            con.register("file_artists", distinct.artists)
            self._upsert_artists(bool(name_only), bool(id_only), has_no_id)
            source = "file_tracks f LEFT JOIN id_keys a ON a.artist_id = f.artist_id"
            artist_key = "a.artist_key"
            if has_no_id:
                source += (
                    " LEFT JOIN name_keys n"
                    " ON f.artist_id IS NULL AND n.artist_name = f.artist_name"
                )
                artist_key = "coalesce(a.artist_key, n.artist_key)"
        new_tracks = con.execute(
            f"""
            INSERT INTO tracks (track_id, name, artist_key, album_id, album_name, duration_ms, source)
            SELECT f.track_id, f.track_name, {artist_key}, f.album_id, f.album_name,
                   f.duration_ms, 'mpd'
            FROM {source}
            {"ANTI JOIN tracks t ON t.track_id = f.track_id" if anti_tracks else ""}
            """
        ).fetchall()[0][0]
        # Tracks first seen in a reduced file learn their album and duration from a full one.
        if no_album:
            con.execute(
                """
            UPDATE tracks SET album_id = s.album_id,
                              album_name = coalesce(tracks.album_name, s.album_name),
                              duration_ms = coalesce(tracks.duration_ms, s.duration_ms)
            FROM (SELECT track_id, any_value(album_id) AS album_id, any_value(album_name) AS album_name,
                         any_value(duration_ms) AS duration_ms
                  FROM stage_rows WHERE album_id IS NOT NULL GROUP BY track_id) s
            WHERE tracks.track_id = s.track_id AND tracks.album_id IS NULL
            """
            )
        con.register("file_albums", file_albums)
        con.execute(
            f"""
            INSERT INTO albums (album_id, name)
            SELECT f.album_id, f.album_name FROM file_albums f
            {"ANTI JOIN albums a ON a.album_id = f.album_id" if anti_albums else ""}
            """
        )
        if keys is None:  # the SQL path's tables
            for table in ("known", "sa", "id_keys", "name_keys"):
                con.execute(f"DROP TABLE IF EXISTS {table}")
        return int(new_tracks)

    def _add_artists_by_id(
        self, distinct: DistinctRows, run: IngestRun, known: KnownIds
    ) -> np.ndarray[Any, np.dtype[np.int64]] | None:
        """The key of each of the file's artists (``distinct.artist_first``), adding those the
        catalog lacks; None when the run's set cannot decide (the SQL path then does).

        For files whose artists all have ids, in a catalog whose artists all have ids and
        names: there the SQL path's fix-ups have nothing to do, and an artist is its id.
        """
        split = known.new_mask(distinct.artist_keys)
        if split is None:
            return None
        _, new = split
        assert new.found is not None and new.rows is not None
        keys = new.found.astype(np.int64)
        n_new = len(new.rows)
        if n_new:
            # Keys from the catalog's sequence, as the SQL path and other writers take them.
            fresh = np.asarray(
                self.con.execute(
                    "SELECT nextval('artist_key_seq') AS k FROM range(?)", [n_new]
                ).fetchnumpy()["k"],
                dtype=np.int64,
            )
            keys[new.rows] = fresh
            new.values = fresh
            added = distinct.artist_first.take(pa.array(new.rows))
            self.con.register(
                "file_artists",
                pa.table(
                    {
                        "artist_key": pa.array(fresh),
                        "artist_id": added["artist_id"],
                        "name": added["artist_name"],
                        "norm": added["norm"],
                    }
                ),
            )
            self.con.execute(
                """
                INSERT INTO artists (artist_key, artist_id, name, norm_name, source, updated_at)
                SELECT artist_key, artist_id, name, norm, 'mpd', current_timestamp
                FROM file_artists
                """
            )
        run.pending.append((known, new))
        return keys

    @staticmethod
    def _only_new(
        run: IngestRun | None, known: KnownIds | None, table: pa.Table, keys: IdKeys
    ) -> tuple[pa.Table, bool, np.ndarray[Any, np.dtype[np.intp]] | None]:
        """``table`` reduced to its ids that ``known`` lacks (their keys join the run's pending
        keys), whether the SQL must still anti-join against the catalog (no set, or one that
        cannot decide), and the rows of ``table`` kept (None: all)."""
        if run is None or known is None:
            return table, True, None
        split = known.new_mask(keys)
        if split is None:
            return table, True, None
        mask, new_keys = split
        run.pending.append((known, new_keys))
        return table.filter(pa.array(mask)), False, np.flatnonzero(mask)

    def _find_known_artists(self, id_only: bool) -> None:
        """``known(artist_id, artist_key, nameless)``: the catalog's artists with an id the file
        names, from one scan of ``artists``."""
        nameless = "bool_or(a.norm_name = '')" if id_only else "false"
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE known AS
            SELECT a.artist_id, min(a.artist_key) AS artist_key, {nameless} AS nameless
            FROM artists a SEMI JOIN file_artists f ON f.artist_id = a.artist_id
            GROUP BY a.artist_id
            """
        )

    def _upsert_artists(self, name_only: bool, id_only: bool, has_no_id: bool) -> None:
        """Artists by Spotify id where known, else by normalised name; learn ids for name-only ones.

        Works on ``file_artists`` (the file's distinct id and name pairs); ``name_only`` and
        ``id_only`` say whether the catalog holds artists without an id or without a name,
        ``has_no_id`` whether the file has rows without an artist id. Leaves ``id_keys``
        (artist_id, artist_key) for the file's artist ids and, with ``has_no_id``,
        ``name_keys`` (artist_name, artist_key) for its artists without one.
        """
        con = self.con
        self._find_known_artists(id_only)
        # Normalise (NFKC + casefold, no SQL equivalent) only the names that can matter: those
        # of artists without an id, and of ids the catalog lacks or holds without a name.
        names = con.sql(
            """
            SELECT DISTINCT artist_name FROM file_artists f
            WHERE artist_id IS NULL
               OR artist_id NOT IN (SELECT artist_id FROM known WHERE NOT nameless)
            """
        ).to_arrow_table()["artist_name"]
        norm_table = pa.table(
            {
                "artist_name": names,
                "norm": normalise_names(names),
            }
        )
        con.register("name_norm", norm_table)
        try:
            con.execute(
                """
                CREATE OR REPLACE TEMP TABLE sa AS
                SELECT f.artist_id, m.norm, any_value(f.artist_name) AS name
                FROM file_artists f JOIN name_norm m USING (artist_name) GROUP BY f.artist_id, m.norm
                """
            )
            # Each fix-up below runs only when the catalog has rows it could apply to, so a
            # file costs O(its own rows) rather than a scan of every artist.
            # A name-only artist learns its id when a file names it with one.
            if name_only:
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
                self._find_known_artists(id_only)  # ids just learned are known now
            # An artist stored by id only (a feature table without names) learns its name.
            if id_only:
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
                CREATE OR REPLACE TEMP TABLE id_keys AS
                SELECT nextval('artist_key_seq') AS artist_key, artist_id, name, norm
                FROM (SELECT artist_id, any_value(name) AS name, any_value(norm) AS norm
                      FROM sa WHERE artist_id IS NOT NULL GROUP BY artist_id) s
                ANTI JOIN known k USING (artist_id)
                """
            )
            con.execute(
                """
                INSERT INTO artists (artist_key, artist_id, name, norm_name, source, updated_at)
                SELECT artist_key, artist_id, name, norm, 'mpd', current_timestamp FROM id_keys
                """
            )
            con.execute(
                """
                INSERT INTO id_keys (artist_key, artist_id)
                SELECT artist_key, artist_id FROM known
                """
            )
            if has_no_id:
                con.execute(
                    """
                INSERT INTO artists (artist_key, artist_id, name, norm_name, source, updated_at)
                SELECT nextval('artist_key_seq'), NULL, name, norm, 'mpd', current_timestamp
                FROM (SELECT norm, any_value(name) AS name FROM sa WHERE artist_id IS NULL GROUP BY norm) s
                WHERE NOT EXISTS (SELECT 1 FROM artists a WHERE a.norm_name = s.norm)
                """
                )
                # Artists without an id resolve by normalised name (the first artist of that name).
                con.execute(
                    """
                CREATE OR REPLACE TEMP TABLE name_keys AS
                SELECT m.artist_name, min(a.artist_key) AS artist_key
                FROM name_norm m JOIN artists a ON a.norm_name = m.norm
                WHERE m.artist_name IN (SELECT artist_name FROM file_artists WHERE artist_id IS NULL)
                GROUP BY m.artist_name
                """
                )
        finally:
            unregister(con, "name_norm")
