"""Catalog reads: statistics and the tables a snapshot is built from."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from segue.catalog.core import CatalogBase
from segue.core.text import normalise_mpd_title


class Queries(CatalogBase):
    def counts(self) -> dict[str, int]:
        q = self.scalar
        return {
            "playlists": int(q("SELECT count(*) FROM playlists")),
            "tracks": int(q("SELECT count(*) FROM playlist_tracks")),
            "unique_tracks": int(q("SELECT count(*) FROM tracks")),
            "unique_artists": int(q("SELECT count(*) FROM artists")),
            "unique_albums": int(q("SELECT count(*) FROM albums")),
            "files": int(q("SELECT count(*) FROM ingested_files")),
        }

    def stats(self, top: int = 20) -> dict[str, Any]:
        """What the official MPD statistics report, computed from the catalog."""
        con = self.con
        out: dict[str, Any] = self.counts()
        out["unique_tracks_in_playlists"] = int(
            self.scalar("SELECT count(DISTINCT track_id) FROM playlist_tracks")
        )
        out["unique_albums_in_playlists"] = int(
            self.scalar(
                "SELECT count(DISTINCT t.album_id) FROM tracks t SEMI JOIN playlist_tracks r USING (track_id)"
            )
        )
        names = [
            r[0]
            for r in con.execute("SELECT name FROM playlists WHERE name IS NOT NULL").fetchall()
        ]
        out["unique_titles"] = len(set(names))
        out["unique_normalized_titles"] = len({normalise_mpd_title(n) for n in names})
        out["playlists_with_descriptions"] = int(
            self.scalar(
                "SELECT count(*) FROM playlists WHERE description IS NOT NULL AND description <> ''"
            )
        )
        out["avg_playlist_length"] = float(
            self.scalar(
                "SELECT avg(n) FROM (SELECT count(*) AS n FROM playlist_tracks GROUP BY pid)"
            )
            or 0.0
        )
        title_counts: dict[str, int] = {}
        for n in names:
            key = normalise_mpd_title(n)
            title_counts[key] = title_counts.get(key, 0) + 1
        out["top_titles"] = [
            {"title": t, "count": c}
            for t, c in sorted(title_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        ]
        out["top_tracks"] = [
            {"count": int(c), "track": n, "artist": a, "uri": f"spotify:track:{tid}"}
            for tid, n, a, c in con.execute(
                """
                SELECT r.track_id, t.name, a.name, count(*) AS c FROM playlist_tracks r
                JOIN tracks t USING (track_id) JOIN artists a USING (artist_key)
                GROUP BY r.track_id, t.name, a.name ORDER BY c DESC, r.track_id LIMIT ?
                """,
                [top],
            ).fetchall()
        ]
        out["top_artists"] = [
            {"count": int(c), "artist": n}
            for n, c in con.execute(
                """
                SELECT a.name, count(*) AS c FROM playlist_tracks r
                JOIN tracks t USING (track_id) JOIN artists a USING (artist_key)
                GROUP BY a.artist_key, a.name ORDER BY c DESC, a.name LIMIT ?
                """,
                [top],
            ).fetchall()
        ]
        out["playlist_length_histogram"] = [
            {"length": int(n), "count": int(c)}
            for n, c in con.execute(
                """
                SELECT n, count(*) AS c FROM (SELECT count(*) AS n FROM playlist_tracks GROUP BY pid)
                GROUP BY n ORDER BY c DESC, n LIMIT ?
                """,
                [top],
            ).fetchall()
        ]
        out["num_edits_histogram"] = [
            {"edits": int(n), "count": int(c)}
            for n, c in con.execute(
                "SELECT num_edits, count(*) AS c FROM playlists WHERE num_edits IS NOT NULL "
                "GROUP BY num_edits ORDER BY c DESC, num_edits LIMIT ?",
                [top],
            ).fetchall()
        ]
        out["num_followers_histogram"] = [
            {"followers": int(n), "count": int(c)}
            for n, c in con.execute(
                "SELECT num_followers, count(*) AS c FROM playlists WHERE num_followers IS NOT NULL "
                "GROUP BY num_followers ORDER BY c DESC, num_followers LIMIT ?",
                [top],
            ).fetchall()
        ]
        out.update(self.fact_counts())
        from segue.catalog.matching import genres_by_source, match_counts

        # Which source gave the artists their genres (spotify, musicbrainz, lastfm, deezer,
        # table, ...), and how the name-matching sources matched the catalog.
        out["artists_with_genres_by_source"] = genres_by_source(self)  # type: ignore[arg-type]
        out["matches_by_source"] = match_counts(self)  # type: ignore[arg-type]
        return out

    def fact_counts(self) -> dict[str, int]:
        q = self.scalar
        return {
            "tracks_with_audio_features": int(q("SELECT count(*) FROM audio_features")),
            "tracks_with_release_date": int(
                q(
                    "SELECT count(*) FROM tracks WHERE release_year IS NOT NULL OR release_date IS NOT NULL"
                )
            ),
            "artists_with_genres": int(q("SELECT count(*) FROM artists WHERE len(genres) > 0")),
        }

    # snapshot inputs ----------------------------------------------------------------------
    def snapshot_tables(self) -> dict[str, pa.Table]:
        """Arrow tables for :func:`segue.snapshot.from_catalog.build_snapshot`.

        ``tracks`` in a stable order (by track_id) with facts joined; ``artists``; ``playlists``
        (by pid); ``rows`` as (playlist_index, track_index) pairs in those orders.
        """
        con = self.con
        tracks = con.sql(
            """
            SELECT t.track_id, t.name, t.artist_key, a.name AS artist_name, t.album_id,
                   coalesce(t.album_name, al.name) AS album_name,
                   CAST(coalesce(t.release_year, al.release_year) AS FLOAT) AS release_year,
                   CAST(t.popularity AS FLOAT) AS popularity,
                   f.danceability, f.energy, f."key", f.loudness, f."mode", f.speechiness,
                   f.acousticness, f.instrumentalness, f.liveness, f.valence, f.tempo,
                   f.time_signature
            FROM tracks t
            JOIN artists a USING (artist_key)
            LEFT JOIN albums al ON al.album_id = t.album_id
            LEFT JOIN audio_features f ON f.track_id = t.track_id
            ORDER BY t.track_id
            """
        ).to_arrow_table()
        artists = con.sql(
            """
            SELECT artist_key, artist_id, name, CAST(popularity AS FLOAT) AS popularity,
                   coalesce(genres, []) AS genres
            FROM artists ORDER BY artist_key
            """
        ).to_arrow_table()
        playlists = con.sql("SELECT pid, name FROM playlists ORDER BY pid").to_arrow_table()
        # Indices are computed in the database: 66M rows travel as two int32 columns, not strings.
        rows = con.sql(
            """
            SELECT p.pidx::INTEGER AS playlist_index, t.tidx::INTEGER AS track_index
            FROM playlist_tracks r
            JOIN (SELECT track_id, row_number() OVER (ORDER BY track_id) - 1 AS tidx FROM tracks) t
              USING (track_id)
            JOIN (SELECT pid, row_number() OVER (ORDER BY pid) - 1 AS pidx FROM playlists) p
              USING (pid)
            """
        ).to_arrow_table()
        return {"tracks": tracks, "artists": artists, "playlists": playlists, "rows": rows}
