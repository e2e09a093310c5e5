"""Playlists from files (Exportify CSV, MPD JSON, links lists) and seeds from free text."""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
from pathlib import Path

import pytest

from segue.core.errors import InputFileError
from segue.core.ids import Kind, SpotifyRef
from segue.core.records import ArtistRef
from segue.service.inputs import InputPlaylist, parse_seed_text, read_playlist_file, read_playlists
from tests.conftest import fake_id, make_playlists, shared

RNG = random.Random(21)
T = [fake_id(RNG) for _ in range(8)]
A = [fake_id(RNG) for _ in range(4)]
AL = fake_id(RNG)

EXPORTIFY_HEADER = [
    "Track URI",
    "Track Name",
    "Artist URI(s)",
    "Artist Name(s)",
    "Album URI",
    "Album Name",
    "Album Release Date",
    "Track Duration (ms)",
    "Popularity",
    "Artist Genres",
    "Danceability",
    "Energy",
    "Time Signature",
]


def exportify_text(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(EXPORTIFY_HEADER)
    writer.writerows(rows)
    return buf.getvalue()


def exportify_rows() -> list[list[str]]:
    return [
        [
            f"spotify:track:{T[0]}",
            "Yonkers",
            f"spotify:artist:{A[0]}",
            "Tyler, The Creator",
            f"spotify:album:{AL}",
            "Goblin",
            "2011-05-10",
            "249000",
            "71",
            "hip hop,rap",
            "0.6",
            "0.8",
            "4",
        ],
        [
            f"spotify:track:{T[1]}",
            "Duet",
            f"spotify:artist:{A[1]},spotify:artist:{A[2]}",
            "One,Two",
            "",
            "",
            "2019",
            "180000",
            "",
            "",
            "",
            "",
            "",
        ],
        [
            "spotify:local:Someone:Album:Title:200",
            "Title",
            "",
            "Someone",
            "",
            "",
            "",
            "200000",
            "0",
            "",
            "",
            "",
            "",
        ],
        [
            f"spotify:track:{T[0]}",
            "Yonkers",
            f"spotify:artist:{A[0]}",
            "Tyler, The Creator",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
        ],
        [
            f"https://open.spotify.com/track/{T[2]}?si=zz",
            "Nameless artist ids",
            "",
            "Three",
            "",
            "",
            "bad date",
            "",
            "",
            "",
            "",
            "",
            "",
        ],
    ]


def test_exportify_csv(tmp_path: Path) -> None:
    path = tmp_path / "My_Road_Trip.csv"
    path.write_text(exportify_text(exportify_rows()))
    pl = read_playlist_file(path)
    assert isinstance(pl, InputPlaylist) and pl.format == "exportify"
    assert pl.name == "My Road Trip"
    assert pl.track_ids == [T[0], T[1], T[2]]  # the repeat is dropped, the local file skipped
    assert pl.skipped == [
        "line 4: local file 'spotify:local:Someone:Album:Title:200' has no Spotify id"
    ]
    first, duet, third = pl.tracks
    # One artist id: the name with a comma is one artist.
    assert first.artists == [ArtistRef("Tyler, The Creator", A[0])]
    assert (
        first.name,
        first.album_id,
        first.album_name,
        first.release_date,
        first.release_year,
    ) == ("Yonkers", AL, "Goblin", "2011-05-10", 2011)
    assert (first.duration_ms, first.popularity, first.source) == (249000, 71, "exportify")
    assert duet.artists == [ArtistRef("One", A[1]), ArtistRef("Two", A[2])]
    assert (duet.popularity, duet.release_date) == (None, "2019")
    assert third.artists == [ArtistRef("Three")] and third.release_date is None
    assert [(f.track_id, f.values) for f in pl.audio_features] == [
        (T[0], {"danceability": 0.6, "energy": 0.8, "time_signature": 4.0})
    ]
    assert [(a.artist_id, a.name, a.genres) for a in pl.artists] == [
        (A[0], "Tyler, The Creator", ["hip hop", "rap"])
    ]
    # Bytes work too, and the name is then given by the caller.
    assert read_playlist_file(path.read_bytes(), name="Trip").name == "Trip"
    assert read_playlist_file(path.read_bytes()).name is None


def test_old_exportify_columns(tmp_path: Path) -> None:
    text = "Spotify ID,Artist IDs,Track Name,Album Name,Artist Name(s),Release Date,Duration (ms),Popularity\n"
    text += f"{T[3]},{A[3]},Old,Alb,Solo,1999-01-01,1000,5\n"
    pl = read_playlist_file(text.encode())
    assert pl.track_ids == [T[3]]
    assert pl.tracks[0].artists == [ArtistRef("Solo", A[3])]
    assert (pl.tracks[0].release_year, pl.tracks[0].duration_ms, pl.tracks[0].popularity) == (
        1999,
        1000,
        5,
    )


@pytest.mark.parametrize(
    ("row_uri", "message"),
    [
        (
            "spotify:track:tooshort",
            r"bad\.csv at line 3, column 'Track URI': not a Spotify reference: 'spotify:track:tooshort'",
        ),
        (f"spotify:album:{T[4]}", r"line 3, column 'Track URI'.*it is an album, expected a track"),
    ],
)
def test_exportify_bad_uri(tmp_path: Path, row_uri: str, message: str) -> None:
    rows = [*exportify_rows()[:1], [row_uri, "x", "", "y", "", "", "", "", "", "", "", "", ""]]
    path = tmp_path / "bad.csv"
    path.write_text(exportify_text(rows))
    with pytest.raises(ValueError, match=message):
        read_playlist_file(path)


def test_exportify_bad_number_and_no_rows(tmp_path: Path) -> None:
    rows = [[f"spotify:track:{T[0]}", "x", "", "y", "", "", "", "", "", "", "loud", "", ""]]
    with pytest.raises(
        InputFileError, match=r"line 2, column 'Danceability': expected a number, got 'loud'"
    ):
        read_playlist_file(exportify_text(rows).encode(), name="e.csv")
    with pytest.raises(InputFileError, match="header but no track rows"):
        read_playlist_file(exportify_text([]).encode())


def test_mpd_json_single_playlist_slice_and_list(tmp_path: Path) -> None:
    playlists = make_playlists(3, seed=9)
    single = playlists[0]
    path = tmp_path / "one.json"
    path.write_text(json.dumps(single))
    pl = read_playlist_file(path)
    uris = [t["track_uri"].split(":")[-1] for t in single["tracks"]]
    assert (pl.name, pl.format, pl.track_ids) == (single["name"], "mpd", list(dict.fromkeys(uris)))
    first = pl.tracks[0]
    src = single["tracks"][0]
    assert first.artists == [ArtistRef(src["artist_name"], src["artist_uri"].split(":")[-1])]
    assert (first.album_id, first.duration_ms, first.source) == (
        src["album_uri"].split(":")[-1],
        src["duration_ms"],
        "mpd",
    )

    # An MPD slice or challenge set with one playlist (challenge playlists may have no name).
    challenge = {
        "date": "2018-01-16",
        "version": "v1",
        "playlists": [{"pid": 1000, "num_samples": 1, "tracks": single["tracks"][:1]}],
    }
    got = read_playlist_file(json.dumps(challenge).encode())
    assert (got.name, got.track_ids) == (None, uris[:1])
    assert read_playlist_file(json.dumps(challenge).encode(), name="Named").name == "Named"
    # Several playlists: read_playlists takes each; read_playlist_file wants one.
    many = {"info": {}, "playlists": playlists}
    assert [p.name for p in read_playlists(json.dumps(many).encode())] == [
        p["name"] for p in playlists
    ]
    assert len(read_playlists(json.dumps(playlists).encode())) == 3
    with pytest.raises(ValueError, match="holds 3 playlists, expected one"):
        read_playlist_file(json.dumps(many).encode())
    # A plain list of URIs as tracks is accepted.
    assert read_playlist_file(
        json.dumps({"name": "u", "tracks": [f"spotify:track:{T[5]}"]}).encode()
    ).track_ids == [T[5]]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"name": "x", "tracks": [{"track_uri": "spotify:track:nope"}]},
            r"j\.json at playlist\.tracks\[0\]: 'track_uri' must be like "
            r"'spotify:track:<22 base62 chars>', got 'spotify:track:nope'",
        ),
        (
            {"playlists": [{"name": "x", "tracks": [{"track_name": "no uri"}]}]},
            r"playlists\[0\]\.tracks\[0\]: 'track_uri' must be",
        ),
        (
            {"playlists": [{"name": "x", "tracks": {"a": 1}}]},
            r"playlists\[0\]: 'tracks' must be a list, got dict",
        ),
        ({"hello": 1}, "top level: expected an MPD playlist object"),
        ({"playlists": []}, "holds no playlist"),
        ([1], r"\[0\]: expected a playlist object, got int"),
    ],
)
def test_mpd_json_errors(tmp_path: Path, doc: object, message: str) -> None:
    path = tmp_path / "j.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputFileError, match=message):
        read_playlists(path)


def test_truncated_json_names_the_position(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text(json.dumps(make_playlists(1)[0])[:200])
    with pytest.raises(InputFileError, match=r"cut\.json at line 1, column \d+ .*truncated"):
        read_playlist_file(path)


@pytest.mark.realdata
def test_real_mpd_slice_reads_every_playlist() -> None:
    playlists = read_playlists(shared("mpd", "mpd.slice.0-999.first29.json"))
    assert len(playlists) == 29
    assert sum(len(p.track_ids) for p in playlists) <= 1_447
    assert all(p.name for p in playlists) and all(p.track_ids for p in playlists)


def test_links_list(tmp_path: Path) -> None:
    text = (
        "# my seeds\n"
        f"https://open.spotify.com/intl-de/track/{T[0]}?si=abc\n"
        "\n"
        f"spotify:track:{T[1]}   {T[2]}, {T[3]}  # trailing comment\n"
        f"   {T[0]}\n"
        "spotify:local:a:b:c:1\n"
    )
    path = tmp_path / "seeds.txt"
    path.write_text(text)
    pl = read_playlist_file(path)
    assert (pl.format, pl.name, pl.track_ids, pl.tracks) == ("links", "seeds", T[:4], [])
    assert pl.skipped == ["line 6: local file 'spotify:local:a:b:c:1' has no Spotify id"]
    gz = tmp_path / "seeds.txt.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    assert read_playlist_file(gz).track_ids == T[:4]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            f"{T[0]}\n# c\nhttps://open.spotify.com/playlist/{T[1]}\n",
            r"at line 3: .*it is a playlist, expected a track",
        ),
        (f"{T[0]}\nhello world\n", r"at line 2: not a Spotify reference: 'hello'"),
        ("# only comments\n\n", "no track link, URI or id found"),
        ("", "the file is empty"),
    ],
)
def test_links_list_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "l.txt"
    path.write_text(text)
    with pytest.raises(InputFileError, match=message) as info:
        read_playlist_file(path)
    assert str(path) in str(info.value)


def test_unreadable_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="cannot read"):
        read_playlist_file(tmp_path / "missing.csv")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InputFileError, match="not UTF-8"):
        read_playlist_file(tmp_path / "bin.csv")
    with pytest.raises(TypeError, match="path or bytes"):
        read_playlist_file(42)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# free text


def test_parse_seed_text() -> None:
    got = parse_seed_text(
        f"https://open.spotify.com/track/{T[0]}?si=x yellow coldplay, daft punk\n"
        f"spotify:artist:{A[0]}; {T[1]}  around the world {T[2]}"
    )
    assert got == [
        SpotifyRef(Kind.TRACK, T[0]),
        "yellow coldplay",
        "daft punk",
        SpotifyRef(Kind.ARTIST, A[0]),
        SpotifyRef(Kind.TRACK, T[1]),
        "around the world",
        SpotifyRef(Kind.TRACK, T[2]),
    ]
    assert parse_seed_text("  \n , ") == []
    assert parse_seed_text(f"spotify:user:me:playlist:{T[3]}") == [SpotifyRef(Kind.PLAYLIST, T[3])]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("https://open.spotify.com/track/short", "is not 22 base62 characters"),
        (f"https://example.com/track/{T[0]}", "is not open.spotify.com"),
        ("spotify:song:x", "unknown kind"),
    ],
)
def test_parse_seed_text_refuses_broken_links(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_seed_text(f"good words {text}")
    with pytest.raises(TypeError):
        parse_seed_text(None)  # type: ignore[arg-type]
