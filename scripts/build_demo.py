"""Build the bundled demo data: ``src/segue/data/demo/`` from the TidyTuesday Spotify songs table.

The TidyTuesday table (2020-01-21; 32,833 rows, 471 real Spotify playlists) is licensed for
reuse, so segue ships it, re-encoded as a compact Parquet file with explicit column types,
together with a manifest recording where it came from. The output is byte-for-byte the same for
the same input and the same pyarrow version.

Usage::

    python scripts/build_demo.py [--source ../shared/data/features/tidytuesday_spotify_songs.csv.gz]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "features" / "tidytuesday_spotify_songs.csv.gz"
OUT_DIR = REPO / "src" / "segue" / "data" / "demo"
TABLE_NAME = "tidytuesday_spotify_songs.parquet"
SOURCE_URL = "https://github.com/rfordatascience/tidytuesday/tree/master/data/2020/2020-01-21"

SCHEMA = pa.schema(
    [
        ("track_id", pa.string()),
        ("track_name", pa.string()),
        ("track_artist", pa.string()),
        ("track_popularity", pa.int16()),
        ("track_album_id", pa.string()),
        ("track_album_name", pa.string()),
        ("track_album_release_date", pa.string()),
        ("playlist_name", pa.string()),
        ("playlist_id", pa.string()),
        ("playlist_genre", pa.string()),
        ("playlist_subgenre", pa.string()),
        ("danceability", pa.float32()),
        ("energy", pa.float32()),
        ("key", pa.int8()),
        ("loudness", pa.float32()),
        ("mode", pa.int8()),
        ("speechiness", pa.float32()),
        ("acousticness", pa.float32()),
        ("instrumentalness", pa.float32()),
        ("liveness", pa.float32()),
        ("valence", pa.float32()),
        ("tempo", pa.float32()),
        ("duration_ms", pa.int32()),
    ]
)


def read_source(path: Path) -> pa.Table:
    """The CSV with explicit types; R's ``NA`` (and empty cells) become nulls."""
    table = pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            column_types=SCHEMA,
            null_values=["NA", ""],
            strings_can_be_null=True,
            include_columns=SCHEMA.names,
        ),
    )
    if table.schema.names != SCHEMA.names:
        raise ValueError(f"{path}: expected columns {SCHEMA.names}, got {table.schema.names}")
    return table


def build(source: Path, out_dir: Path) -> dict[str, object]:
    table = read_source(source)
    out_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        table,
        out_dir / TABLE_NAME,
        compression="zstd",
        compression_level=19,
        use_dictionary=True,
        row_group_size=len(table) + 1,
        write_statistics=False,
    )
    manifest: dict[str, object] = {
        "table": TABLE_NAME,
        "source": source.name,
        "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "source_url": SOURCE_URL,
        "licence": "TidyTuesday data set of 2020-01-21 (Spotify songs via spotifyr), licensed for reuse",
        "rows": len(table),
        "playlists": len(pc.unique(table["playlist_id"])),
        "unique_tracks": len(pc.unique(table["track_id"])),
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source", type=Path, default=DEFAULT_SOURCE, help="the TidyTuesday CSV (.csv or .csv.gz)"
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    args = parser.parse_args(argv)
    if not args.source.exists():
        print(f"error: {args.source} not found", file=sys.stderr)
        return 1
    manifest = build(args.source, args.out)
    size = (args.out / TABLE_NAME).stat().st_size
    print(
        f"wrote {args.out / TABLE_NAME} ({size / 1e6:.2f} MB): {manifest['rows']} rows, "
        f"{manifest['playlists']} playlists, {manifest['unique_tracks']} tracks"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
