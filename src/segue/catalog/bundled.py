"""The offline demo catalog, built from the bundled TidyTuesday Spotify songs table.

The table (``segue/data/demo/``, made by ``scripts/build_demo.py``) holds 32,833 rows of 471
real Spotify playlists. :func:`ensure_demo_catalog` turns it into a catalog:

* the playlists become playlists ``pid`` 0..470 (in order of first appearance, named by
  ``playlist_name``), their rows in file order with repeats within a playlist dropped;
* tracks with their names, artist (by name: the table has no artist ids), album, release date,
  Spotify popularity, duration and audio features;
* every artist gets as genre tags all ``playlist_genre`` and ``playlist_subgenre`` labels its
  tracks appear under, most frequent first; which labels each playlist gave is kept in the
  ``meta`` row :data:`PLAYLIST_LABELS` (``{"pid": [labels]}``), so that validation on the
  catalog's own playlists can leave a held-out playlist's labels out of the genres.

Rows without a track name and artist (R's ``NA``: 5 rows, 4 tracks) are left out, since a track
needs both to be shown and recommended. The build writes a new file and renames it into place,
so a catalog is either absent or complete; a ``meta`` row ``demo`` marks it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

from segue.core.home import CATALOG_FILE, Home
from segue.core.records import AUDIO_FEATURES

DEMO_TABLE = "tidytuesday_spotify_songs.parquet"
DEMO_SOURCE = "tidytuesday"
#: ``meta`` key: the labels each playlist gave as genres to the artists of its tracks.
PLAYLIST_LABELS = "playlist_labels"
CATALOG_NAME = CATALOG_FILE
# The table has every audio feature but time_signature.
_FEATURES = tuple(f for f in AUDIO_FEATURES if f != "time_signature")


def demo_home(home: Home) -> Path:
    """The demo's home folder: ``$SEGUE_DEMO_HOME``, else ``<segue home>/demo``."""
    return home.demo.root


def demo_table_path() -> Path:
    """The bundled Parquet table (raises ``FileNotFoundError`` if the package lacks it)."""
    path = Path(str(resources.files("segue") / "data" / "demo" / DEMO_TABLE))
    if not path.exists():
        raise FileNotFoundError(f"the demo table {path} is missing: run scripts/build_demo.py")
    return path


def is_demo_catalog(path: Path) -> bool:
    """True when ``path`` is a catalog marked as the demo catalog."""
    from segue.catalog import Catalog

    if not path.exists():
        return False
    with Catalog.open(path, read_only=True) as catalog:
        return catalog.get_meta("demo") is not None


def ensure_demo_catalog(home: Path) -> Path:
    """The demo catalog in ``home`` (``home/catalog.duckdb``), built when absent.

    Idempotent: an existing catalog there is left as it is. Returns the catalog's path.
    """
    home = Path(home)
    path = home / CATALOG_NAME
    if path.exists():
        return path
    home.mkdir(parents=True, exist_ok=True)
    building = home / f".{CATALOG_NAME}.building-{os.getpid()}"
    for stale in (building, building.with_name(building.name + ".wal")):
        stale.unlink(missing_ok=True)
    try:
        build_demo_catalog(building, demo_table_path())
        os.replace(building, path)
    finally:
        for leftover in (building, building.with_name(building.name + ".wal")):
            leftover.unlink(missing_ok=True)
    return path


def _demo_records(table_path: Path) -> dict[str, Any]:
    """Records and MPD-form playlists from the bundled table."""
    import pyarrow.parquet as pq

    from segue.core.records import ArtistFacts, ArtistRef, AudioFeatures, TrackFacts

    cols = pq.read_table(table_path).to_pydict()
    n = len(cols["track_id"])
    tracks: dict[str, TrackFacts] = {}
    features: list[AudioFeatures] = []
    labels: dict[str, Counter[str]] = {}
    artist_names: dict[str, str] = {}
    playlists: dict[str, dict[str, Any]] = {}
    from segue.core.text import normalise_name

    for i in range(n):
        tid = cols["track_id"][i]
        name = cols["track_name"][i]
        artist = cols["track_artist"][i]
        if not name or not artist:
            continue
        norm = normalise_name(artist)
        artist_names.setdefault(norm, artist)
        counter = labels.setdefault(norm, Counter())
        for label in (cols["playlist_genre"][i], cols["playlist_subgenre"][i]):
            if label:
                counter[label] += 1
        if tid not in tracks:
            release = cols["track_album_release_date"][i]
            tracks[tid] = TrackFacts(
                track_id=tid,
                name=name,
                artists=[ArtistRef(artist)],
                album_id=cols["track_album_id"][i],
                album_name=cols["track_album_name"][i],
                release_date=release or None,
                popularity=cols["track_popularity"][i],
                duration_ms=cols["duration_ms"][i],
                source=DEMO_SOURCE,
            )
            values = {f: float(cols[f][i]) for f in _FEATURES if cols[f][i] is not None}
            features.append(AudioFeatures(tid, values, DEMO_SOURCE))
        pl = playlists.get(cols["playlist_id"][i])
        if pl is None:
            pl = playlists[cols["playlist_id"][i]] = {
                "pid": len(playlists),
                "name": cols["playlist_name"][i] or "",
                "tracks": [],
                "_seen": set(),
                "_labels": {},
            }
        for label in (cols["playlist_genre"][i], cols["playlist_subgenre"][i]):
            if label:
                pl["_labels"][label] = None
        if tid in pl["_seen"]:
            continue
        pl["_seen"].add(tid)
        pl["tracks"].append(
            {
                "pos": len(pl["tracks"]),
                "track_uri": f"spotify:track:{tid}",
                "track_name": name,
                "artist_name": artist,
                "album_uri": f"spotify:album:{cols['track_album_id'][i]}"
                if cols["track_album_id"][i]
                else None,
                "album_name": cols["track_album_name"][i],
                "duration_ms": cols["duration_ms"][i],
            }
        )
    artists = [
        ArtistFacts(
            None,
            artist_names[norm],
            [label for label, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))],
            source=DEMO_SOURCE,
        )
        for norm, counter in labels.items()
    ]
    mpd_playlists = []
    given: dict[str, list[str]] = {}
    for pl in playlists.values():
        pl.pop("_seen")
        given[str(pl["pid"])] = list(pl.pop("_labels"))
        pl["num_tracks"] = len(pl["tracks"])
        mpd_playlists.append(pl)
    return {
        "tracks": list(tracks.values()),
        "artists": artists,
        "features": features,
        "playlists": mpd_playlists,
        "labels": given,
    }


def build_demo_catalog(path: Path, table_path: Path) -> dict[str, int]:
    """Build the demo catalog at ``path`` (which must not exist) from ``table_path``.

    Returns the catalog's counts.
    """
    from segue.catalog import Catalog
    from segue.formats.mpd import columns_from_playlists

    records = _demo_records(table_path)
    digest = hashlib.sha256(table_path.read_bytes()).hexdigest()
    with Catalog.open(path) as catalog:
        catalog.upsert_facts(
            tracks=records["tracks"], artists=records["artists"], audio_features=records["features"]
        )
        cols = columns_from_playlists(f"demo:{table_path.name}", digest, records["playlists"])
        catalog.add_slice(cols)
        catalog.set_meta(PLAYLIST_LABELS, records["labels"])
        counts = catalog.counts()
        catalog.set_meta(
            "demo",
            {
                "source": table_path.name,
                "sha256": digest,
                "playlists": counts["playlists"],
                "tracks": counts["unique_tracks"],
            },
        )
        catalog.con.execute("CHECKPOINT")
    return counts


def demo_info(path: Path) -> dict[str, Any] | None:
    """The ``demo`` meta row of a catalog, or None when it is not a demo catalog."""
    from segue.catalog import Catalog

    with Catalog.open(path, read_only=True) as catalog:
        value = catalog.get_meta("demo")
    return json.loads(value) if value else None


__all__ = [
    "build_demo_catalog",
    "demo_home",
    "demo_info",
    "demo_table_path",
    "ensure_demo_catalog",
    "is_demo_catalog",
]
