"""Challenge sets, submissions, scoring, reports and their commands, on generated MPD slices."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections import Counter
from pathlib import Path
from typing import Any, Self

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from segue.core.errors import InputFileError
from segue.evaluation.formats import (
    CATEGORIES,
    CATEGORY_BY_NUMBER,
    load_challenge_set,
    load_truth,
    read_submission,
    write_submission,
)
from segue.evaluation.make import make_challenge, split_tracks
from segue.evaluation.report import comparison_table, plot_results, write_report
from segue.evaluation.run import run_challenge
from segue.evaluation.score import score_submission
from segue.models.base import Recommender
from tests.conftest import shared

N_POOL = 800


# fixtures ---------------------------------------------------------------------------------


def tid(i: int) -> str:
    return f"{i:022d}"


def uri(i: int) -> str:
    return f"spotify:track:{tid(i)}"


def artist_of(track: int) -> int:
    return track % 50


def mpd_track(t: int, pos: int, *, reduced: bool) -> dict[str, Any]:
    if reduced:
        return {
            "artist_name": f"Artist {artist_of(t)}",
            "track_uri": uri(t),
            "track_name": f"Song {t}",
        }
    return {
        "pos": pos,
        "artist_name": f"Artist {artist_of(t)}",
        "track_uri": uri(t),
        "artist_uri": f"spotify:artist:A{artist_of(t):021d}",
        "track_name": f"Song {t}",
        "album_uri": f"spotify:album:B{t // 3:021d}",
        "duration_ms": 200_000 + t,
        "album_name": f"Album {t // 3}",
    }


def mpd_playlist(pid: int, tracks: list[int], name: str, *, reduced: bool) -> dict[str, Any]:
    pl: dict[str, Any] = {"name": name, "pid": pid, "num_tracks": len(tracks)}
    if not reduced:
        pl.update(
            collaborative="false",
            modified_at=1_500_000_000,
            num_albums=len({t // 3 for t in tracks}),
            num_edits=3,
            num_artists=len({artist_of(t) for t in tracks}),
        )
    pl.update(num_followers=10, duration_ms=200_000 * len(tracks))
    pl["tracks"] = [mpd_track(t, j, reduced=reduced) for j, t in enumerate(tracks)]
    return pl


def generated_playlists(n: int, *, seed: int = 0, reduced: bool = False) -> list[dict[str, Any]]:
    """``n`` playlists: every third one 150-239 tracks, others 5-59; some repeats, some untitled."""
    rng = np.random.default_rng(seed)
    out = []
    for pid in range(n):
        length = int(rng.integers(150, 240)) if pid % 3 == 0 else int(rng.integers(5, 60))
        tracks = [int(t) for t in rng.choice(N_POOL, size=length, replace=False)]
        if pid % 7 == 0 and length > 20:
            tracks[-1] = tracks[3]  # a track twice in one playlist
        name = "" if pid % 11 == 5 else f"mix {pid % 13}"
        out.append(mpd_playlist(pid, tracks, name, reduced=reduced))
    return out


def write_slices(folder: Path, playlists: list[dict[str, Any]], per_file: int = 50) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for start in range(0, len(playlists), per_file):
        chunk = playlists[start : start + per_file]
        path = folder / f"mpd.slice.{start}-{start + len(chunk) - 1}.json"
        info = {"generated_on": "2017-12-03 08:41:42", "slice": f"{start}-{start + len(chunk) - 1}"}
        path.write_text(json.dumps({"info": info, "playlists": chunk}))
        paths.append(path)
    return paths


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    playlists = generated_playlists(120)
    folder = tmp_path / "mpd"
    write_slices(folder, playlists)
    return folder, playlists


@pytest.fixture
def made(tmp_path: Path, source: tuple[Path, list[dict[str, Any]]]) -> dict[str, Any]:
    folder, playlists = source
    out = tmp_path / "challenge"
    summary = make_challenge([folder], out, per_category=3, seed=7, progress=False)
    return {
        "out": out,
        "summary": summary,
        "playlists": {p["pid"]: p for p in playlists},
        "challenge": json.loads((out / "challenge_set.json").read_text()),
        "truth": json.loads((out / "truth.json").read_text()),
    }


def train_playlists(out: Path) -> list[dict[str, Any]]:
    result = []
    for path in sorted((out / "train").glob("mpd.slice.*.json")):
        result.extend(json.loads(path.read_text())["playlists"])
    return result


# make_challenge ---------------------------------------------------------------------------


def test_category_table_matches_the_rules() -> None:
    table = {(c.number, c.title, c.seeds, c.random) for c in CATEGORIES}
    assert table == {
        (1, True, 0, False),
        (2, True, 1, False),
        (3, True, 5, False),
        (4, False, 5, False),
        (5, True, 10, False),
        (6, False, 10, False),
        (7, True, 25, False),
        (8, True, 25, True),
        (9, True, 100, False),
        (10, True, 100, True),
    }
    assert [c.min_held_out for c in CATEGORIES] == [10, 10, 10, 10, 10, 10, 12.5, 12.5, 50, 50]


def test_challenge_set_has_official_form_and_category_counts(made: dict[str, Any]) -> None:
    doc = made["challenge"]
    assert set(doc) == {"date", "version", "name", "description", "playlists"}
    truth = made["truth"]["playlists"]
    assert Counter(e["category"] for e in truth.values()) == dict.fromkeys(range(1, 11), 3)
    assert len(doc["playlists"]) == 30
    assert made["summary"].per_category == dict.fromkeys(range(1, 11), 3)
    for entry in doc["playlists"]:
        category = CATEGORY_BY_NUMBER[truth[str(entry["pid"])]["category"]]
        source = made["playlists"][entry["pid"]]
        expected_keys = {"pid", "num_tracks", "num_samples", "num_holdouts", "tracks"}
        assert set(entry) == expected_keys | ({"name"} if category.title else set())
        if category.title:
            assert entry["name"] == source["name"] != ""
        assert entry["num_tracks"] == len(source["tracks"])
        assert entry["num_samples"] == category.seeds == len(entry["tracks"])
        assert entry["num_holdouts"] == entry["num_tracks"] - category.seeds


def test_seeds_and_held_out_tracks(made: dict[str, Any]) -> None:
    truth = made["truth"]["playlists"]
    for entry in made["challenge"]["playlists"]:
        info = truth[str(entry["pid"])]
        category = CATEGORY_BY_NUMBER[info["category"]]
        source = made["playlists"][entry["pid"]]["tracks"]
        positions = [t["pos"] for t in entry["tracks"]]
        assert positions == sorted(positions)
        if category.random:
            assert len(set(positions)) == category.seeds
        else:
            assert positions == list(range(category.seeds))
        for seed in entry["tracks"]:
            assert seed == source[seed["pos"]]  # MPD track form, unchanged
        seed_uris = [t["track_uri"] for t in entry["tracks"]]
        assert info["seeds"] == seed_uris
        rest = [t["track_uri"] for j, t in enumerate(source) if j not in set(positions)]
        expected = list(dict.fromkeys(u for u in rest if u not in set(seed_uris)))
        assert info["holdouts"] == expected
        assert len(expected) >= max(10, category.seeds / 2)
        assert info["holdout_artist_names"] == [f"Artist {int(u[-22:]) % 50}" for u in expected]
        assert info["holdout_artist_uris"] == [
            f"spotify:artist:A{int(u[-22:]) % 50:021d}" for u in expected
        ]


def test_challenge_playlists_are_not_in_train(made: dict[str, Any]) -> None:
    train = train_playlists(made["out"])
    challenge_pids = {p["pid"] for p in made["challenge"]["playlists"]}
    train_pids = [p["pid"] for p in train]
    assert not challenge_pids & set(train_pids)
    assert sorted(train_pids + sorted(challenge_pids)) == sorted(made["playlists"])
    # unchanged, in the input's schema
    by_pid = sorted(train, key=lambda p: p["pid"])
    assert by_pid == [p for pid, p in made["playlists"].items() if pid not in challenge_pids]
    assert made["summary"].n_train_playlists == 90
    names = sorted(p.name for p in (made["out"] / "train").iterdir())
    assert names == ["mpd.slice.0-89.json"]


def test_train_slices_hold_1000_playlists_each(tmp_path: Path) -> None:
    playlists = generated_playlists(30, seed=3)
    playlists += [
        mpd_playlist(pid, list(range(pid % 50, pid % 50 + 12)), "short", reduced=True)
        for pid in range(30, 1100)
    ]
    write_slices(tmp_path / "mpd", playlists, per_file=400)
    summary = make_challenge([tmp_path / "mpd"], tmp_path / "out", per_category=1, progress=False)
    names = sorted(p.name for p in (tmp_path / "out" / "train").iterdir())
    assert names == ["mpd.slice.0-999.json", "mpd.slice.1000-1089.json"]
    assert summary.n_train_files == 2
    assert len(train_playlists(tmp_path / "out")) == 1090


def test_make_challenge_is_deterministic(tmp_path: Path, source: tuple[Path, Any]) -> None:
    folder, _ = source
    docs = []
    for run, seed in (("a", 1), ("b", 1), ("c", 2)):
        make_challenge([folder], tmp_path / run, per_category=3, seed=seed, progress=False)
        challenge = json.loads((tmp_path / run / "challenge_set.json").read_text())
        docs.append((challenge["playlists"], (tmp_path / run / "truth.json").read_bytes()))
    assert docs[0] == docs[1]
    assert docs[0][0] != docs[2][0]


def test_eligibility_needs_max_10_or_half_k_distinct_held_out(tmp_path: Path) -> None:
    def block(start: int, n: int) -> list[int]:
        return list(range(start, start + n))

    playlists = [
        mpd_playlist(0, block(0, 150), "exactly enough", reduced=True),
        mpd_playlist(1, block(0, 150), "exactly enough too", reduced=True),
        mpd_playlist(2, block(0, 149), "one short", reduced=True),
        # 160 rows but only 140 distinct tracks: 40 distinct after the first 100
        mpd_playlist(3, block(0, 140) + block(0, 20), "repeats", reduced=True),
    ]
    playlists += [
        mpd_playlist(10 + i, block(200, 40), f"forty {i}", reduced=True) for i in range(8)
    ]
    write_slices(tmp_path / "mpd", playlists)
    for seed in range(3):
        out = tmp_path / f"out{seed}"
        make_challenge([tmp_path / "mpd"], out, per_category=1, seed=seed, progress=False)
        truth = json.loads((out / "truth.json").read_text())["playlists"]
        long_ones = {int(pid) for pid, e in truth.items() if e["category"] in (9, 10)}
        assert long_ones == {0, 1}
        assert all(len(truth[str(p)]["holdouts"]) == 50 for p in long_ones)
    playlists = [p for p in playlists if p["pid"] != 1]
    write_slices(tmp_path / "mpd2", playlists)
    with pytest.raises(ValueError) as info:
        make_challenge([tmp_path / "mpd2"], tmp_path / "bad", per_category=1, progress=False)
    assert str(info.value) == (
        "category 9 (title, first 100 seed tracks) needs 1 playlist(s) with at least 50 distinct "
        "held-out tracks after 100 seeds and a title, but only 0 of the 11 input playlists are "
        "left that qualify: lower per_category"
    )


def test_split_tracks() -> None:
    cat3, cat8 = CATEGORY_BY_NUMBER[3], CATEGORY_BY_NUMBER[8]
    tracks = ["a", "b", "c", "d", "e", "a", "f", "f", "g"]
    positions, held = split_tracks(tracks, cat3)
    assert positions == [0, 1, 2, 3, 4]
    assert held == ["f", "g"]  # "a" is a seed, "f" counted once
    positions, held = split_tracks(list(range(60)), cat8, np.random.default_rng(0))
    assert len(positions) == 25 and positions == sorted(positions)
    assert held == [t for t in range(60) if t not in positions]
    with pytest.raises(TypeError, match="draws random seeds"):
        split_tracks(tracks, cat8)


def test_untitled_playlists_only_in_categories_without_title(made: dict[str, Any]) -> None:
    truth = made["truth"]["playlists"]
    for pid, entry in truth.items():
        if made["playlists"][int(pid)]["name"] == "":
            assert entry["category"] in (4, 6)


def test_reduced_schema_from_a_tar_gz(tmp_path: Path) -> None:
    playlists = generated_playlists(120, seed=5, reduced=True)
    folder = tmp_path / "dev" / "mpd-dev"
    write_slices(folder, playlists, per_file=40)
    archive = tmp_path / "dev.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="mpd-dev")
    out = tmp_path / "out"
    summary = make_challenge([archive], out, per_category=2, seed=0, progress=False)
    assert summary.n_input_files == 3
    assert summary.n_input_playlists == 120
    truth = load_truth(out / "truth.json")
    assert len(truth.category) == 20
    # reduced schema: no artist URIs, artists matched by name
    assert all(key.startswith("name:Artist ") for key in truth.artists)
    pid = next(iter(truth.holdouts))
    assert truth.holdout_artists[pid][0] == f"name:Artist {int(truth.holdouts[pid][0][-22:]) % 50}"
    challenge = json.loads((out / "challenge_set.json").read_text())
    seeded = next(p for p in challenge["playlists"] if p["tracks"])
    assert set(seeded["tracks"][0]) == {"pos", "artist_name", "track_uri", "track_name"}
    assert len(train_playlists(out)) == 100


def test_make_challenge_refuses_to_overwrite(
    made: dict[str, Any], source: tuple[Path, Any]
) -> None:
    with pytest.raises(FileExistsError, match="already holds a challenge"):
        make_challenge([source[0]], made["out"], per_category=3, seed=7, progress=False)
    make_challenge([source[0]], made["out"], per_category=2, seed=7, overwrite=True, progress=False)
    assert len(json.loads((made["out"] / "challenge_set.json").read_text())["playlists"]) == 20


def test_duplicate_pid_across_files(tmp_path: Path) -> None:
    playlists = generated_playlists(10)
    write_slices(tmp_path / "a", playlists[:5])
    write_slices(tmp_path / "b", playlists[4:])
    with pytest.raises(InputFileError, match="pid 4 already appears in"):
        make_challenge([tmp_path / "a", tmp_path / "b"], tmp_path / "out", per_category=1)


@pytest.mark.parametrize("bad", [0, -1, True])
def test_per_category_must_be_positive(tmp_path: Path, bad: int) -> None:
    with pytest.raises(ValueError, match="per_category must be a positive integer"):
        make_challenge([tmp_path], tmp_path / "out", per_category=bad)


@pytest.mark.realdata
@pytest.mark.slow
def test_real_dev_tarball(tmp_path: Path) -> None:
    tarball = shared("mpd", "mpd-followers10-dev.tar.gz")
    summary = make_challenge([tarball], tmp_path, per_category=5, seed=0, progress=False)
    assert summary.n_input_playlists == 3574
    assert summary.n_input_files == 466
    assert summary.per_category == dict.fromkeys(range(1, 11), 5)
    assert summary.n_train_playlists == 3574 - 50
    truth = load_truth(tmp_path / "truth.json")
    assert len(truth.track_artist) == 128_663
    assert len(load_challenge_set(tmp_path / "challenge_set.json")) == 50


# submissions ------------------------------------------------------------------------------


def recs_for(pid: int, start: int = 1000) -> list[str]:
    return [uri(start + pid * 1000 + i) for i in range(500)]


@pytest.mark.parametrize("name", ["sub.csv", "sub.csv.gz"])
def test_submission_round_trip(tmp_path: Path, name: str) -> None:
    recs = {3: recs_for(3), 1: recs_for(1)}
    path = write_submission(tmp_path / name, "my team", "me@example.org", recs)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == name.endswith(".gz")
    text = gzip.decompress(raw).decode() if name.endswith(".gz") else raw.decode()
    assert text.splitlines()[0] == "team_info,my team,me@example.org"
    assert text.splitlines()[1] == ",".join(["3", *recs[3]])
    sub = read_submission(path)
    assert (sub.team, sub.email, sub.track) == ("my team", "me@example.org", None)
    assert sub.recommendations == recs
    assert list(sub.recommendations) == [3, 1]
    assert sub.line_of == {3: 2, 1: 3}


def test_read_submission_2018_header_comments_and_spaces(tmp_path: Path) -> None:
    line = ", ".join(["7", *recs_for(7)])
    text = f"# made by hand\n\nteam_info,main,old team,old@example.org\n# a comment\n{line}\n"
    path = tmp_path / "sub.csv"
    path.write_text(text)
    sub = read_submission(path)
    assert (sub.team, sub.email, sub.track) == ("old team", "old@example.org", "main")
    assert sub.recommendations == {7: recs_for(7)}
    assert sub.line_of == {7: 5}


def _line(pid: int | str, uris: list[str]) -> str:
    return ",".join([str(pid), *uris])


BAD_SUBMISSIONS = [
    ("", None, "no 'team_info,<team name>,<email>' line: the file holds no submission"),
    (
        "# only a comment\n",
        None,
        "no 'team_info,<team name>,<email>' line: the file holds no submission",
    ),
    (
        f"{_line(1, recs_for(1))}\n",
        "line 1",
        "expected 'team_info,<team name>,<email>' before any playlist, got '1,spotify:track:"
        "0000000000000000002000,spotify:track:0000...'",
    ),
    (
        "team_info,a,b,c\n",
        "line 1",
        "expected 'team_info,<team name>,<email>' (or 2018's 'team_info,main,<team name>,<email>'), "
        "got 'team_info,a,b,c'",
    ),
    (
        "team_info,,x@example.org\n",
        "line 1",
        "expected 'team_info,<team name>,<email>' (or 2018's 'team_info,main,<team name>,<email>'), "
        "got 'team_info,,x@example.org'",
    ),
    ("team_info,t,e\nteam_info,t,e\n", "line 2", "team_info appears again (first on line 1)"),
    (
        f"team_info,t,e\n{_line('p1', recs_for(1))}\n",
        "line 2",
        "expected a playlist id (an integer) first, got 'p1'",
    ),
    (
        f"team_info,t,e\n{_line(1, recs_for(1))}\n\n{_line(1, recs_for(1))}\n",
        "line 4",
        "pid 1 appears again (first on line 2)",
    ),
    (
        f"team_info,t,e\n{_line(1, recs_for(1)[:499])}\n",
        "line 2",
        "pid 1: expected 500 track URIs, got 499",
    ),
    (
        f"team_info,t,e\n{_line(1, [*recs_for(1), uri(5)])}\n",
        "line 2",
        "pid 1: expected 500 track URIs, got 501",
    ),
    (
        f"team_info,t,e\n{_line(1, [*recs_for(1)[:3], 'spotify:album:' + tid(1), *recs_for(1)[4:]])}\n",
        "line 2",
        "pid 1: item 4 is not a track URI like 'spotify:track:<22 base62 chars>': "
        "'spotify:album:0000000000000000000001'",
    ),
    (
        f"team_info,t,e\n{_line(1, [*recs_for(1)[:9], recs_for(1)[2], *recs_for(1)[10:]])}\n",
        "line 2",
        "pid 1: track spotify:track:0000000000000000002002 appears twice (positions 3 and 10)",
    ),
]


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    BAD_SUBMISSIONS,
    ids=[f"bad{i}" for i in range(len(BAD_SUBMISSIONS))],
)
def test_read_submission_errors(tmp_path: Path, text: str, where: str | None, problem: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputFileError) as info:
        read_submission(path)
    assert (info.value.path, info.value.position, info.value.problem) == (str(path), where, problem)
    assert str(info.value) == f"{path}{' at ' + where if where else ''}: {problem}"


def test_read_submission_refuses_seeds_and_damage(tmp_path: Path) -> None:
    path = write_submission(tmp_path / "s.csv", "t", "e", {1: recs_for(1)})
    with pytest.raises(InputFileError) as info:
        read_submission(path, seeds={1: [recs_for(1)[7]]})
    assert info.value.problem == (
        "pid 1: track spotify:track:0000000000000000002007 at position 8 is a seed of the playlist"
    )
    damaged = tmp_path / "d.csv.gz"
    damaged.write_bytes(gzip.compress(b"team_info,t,e\n")[:-6])
    with pytest.raises(InputFileError, match="damaged gzip data"):
        read_submission(damaged)
    with pytest.raises(InputFileError, match="cannot read"):
        read_submission(tmp_path / "absent.csv")


def test_write_submission_validates(tmp_path: Path) -> None:
    target = tmp_path / "s.csv"
    with pytest.raises(ValueError, match="pid 2: expected 500 track URIs, got 3"):
        write_submission(target, "t", "e", {1: recs_for(1), 2: recs_for(2)[:3]})
    with pytest.raises(ValueError, match="pid 1: item 1 is not a track URI"):
        write_submission(target, "t", "e", {1: [tid(0), *recs_for(1)[1:]]})
    with pytest.raises(ValueError, match="is a seed of the playlist"):
        write_submission(target, "t", "e", {1: recs_for(1)}, seeds={1: [recs_for(1)[0]]})
    with pytest.raises(ValueError, match="team must be a non-empty text without commas"):
        write_submission(target, "a,b", "e", {1: recs_for(1)})
    assert not target.exists()


# run_challenge ----------------------------------------------------------------------------


def test_run_challenge_fills_from_fallback_without_seeds(
    made: dict[str, Any], tmp_path: Path
) -> None:
    calls: list[tuple[list[str], str | None, int]] = []
    fallback = [tid(i) for i in range(N_POOL)] + [tid(10_000 + i) for i in range(600)]

    def toy(seeds: list[str], title: str | None, n: int = 500) -> list[str]:
        calls.append((seeds, title, n))
        # seeds back, a repeat, a URI, then 20 tracks: all of them must be cleaned up
        return [*seeds[:3], tid(5000), tid(5000), uri(5001), *(tid(i) for i in range(20))]

    out = tmp_path / "sub.csv.gz"
    summary = run_challenge(made["out"] / "challenge_set.json", out, toy, fallback=fallback)
    assert summary.n_playlists == 30 == len(calls)
    assert summary.n_filled == 30
    challenge = {p["pid"]: p for p in made["challenge"]["playlists"]}
    for (seeds, title, n), entry in zip(calls, challenge.values(), strict=True):
        assert n == 500
        assert seeds == [t["track_uri"][-22:] for t in entry["tracks"]]
        assert title == entry.get("name")
    sub = read_submission(out)
    assert sub.team == "segue"
    for pid, recs in sub.recommendations.items():
        seed_uris = {t["track_uri"] for t in challenge[pid]["tracks"]}
        assert len(recs) == 500 == len(set(recs))
        assert not seed_uris & set(recs)
        assert recs[:2] == [uri(5000), uri(5001)]


def test_run_challenge_needs_enough_fallback(made: dict[str, Any], tmp_path: Path) -> None:
    def nothing(seeds: list[str], title: str | None, n: int = 500) -> list[str]:
        return []

    with pytest.raises(
        ValueError,
        match=r"the model gave 0 usable tracks and the fallback \(10 tracks\) completes them to 10 of 500",
    ):
        run_challenge(
            made["out"] / "challenge_set.json",
            tmp_path / "s.csv",
            nothing,
            fallback=[tid(i) for i in range(10)],
        )

    def garbage(seeds: list[str], title: str | None, n: int = 500) -> list[str]:
        return ["not an id"]

    with pytest.raises(ValueError, match="recommend_fn returned 'not an id' for pid"):
        run_challenge(made["out"] / "challenge_set.json", tmp_path / "s.csv", garbage)


# scoring ----------------------------------------------------------------------------------


def _filler(exclude: set[str], n: int, start: int = 50_000) -> list[str]:
    return [u for u in (uri(start + i) for i in range(n + len(exclude))) if u not in exclude][:n]


def perfect_recs(truth: dict[str, Any]) -> dict[int, list[str]]:
    recs = {}
    for pid, entry in truth["playlists"].items():
        held = entry["holdouts"][:500]
        recs[int(pid)] = held + _filler(set(held), 500 - len(held))
    return recs


def test_score_perfect_submission(made: dict[str, Any], tmp_path: Path) -> None:
    path = write_submission(tmp_path / "p.csv", "t", "e", perfect_recs(made["truth"]))
    result = score_submission(path, made["out"] / "truth.json")
    assert result["overall"] == {"r_precision": 1.0, "ndcg": pytest.approx(1.0), "clicks": 0.0}
    assert list(result["per_category"]) == list(range(1, 11))
    assert result["n_per_category"] == dict.fromkeys(range(1, 11), 3)
    assert (result["n_playlists"], result["n_missing"], result["team"]) == (30, 0, "t")


def test_score_missing_playlists_count_as_zero(
    made: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recs = perfect_recs(made["truth"])
    dropped = sorted(recs)[:2]
    for pid in dropped:
        del recs[pid]
    path = write_submission(tmp_path / "p.csv", "t", "e", recs)
    result = score_submission(path, made["out"] / "truth.json")
    assert result["n_missing"] == 2
    assert result["overall"]["r_precision"] == pytest.approx(28 / 30)
    assert result["overall"]["clicks"] == pytest.approx(2 * 51 / 30)
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "segue.evaluation.score",
            "WARNING",
            f"{path}: 2 of 30 challenge playlists have no recommendations and score 0 "
            f"(51 clicks): pid {dropped[0]}, {dropped[1]}",
        )
    ]


def test_score_artist_credit(made: dict[str, Any], tmp_path: Path) -> None:
    truth = made["truth"]
    pid, entry = next(iter(truth["playlists"].items()))
    held = entry["holdouts"]
    # a track of the first held-out artist that is neither held out nor a seed
    artist = int(held[0][-22:]) % 50
    taken = set(held) | set(entry["seeds"])
    same_artist = next(uri(t) for t in range(artist, N_POOL, 50) if uri(t) not in taken)
    recs = perfect_recs(truth)
    recs[int(pid)] = [same_artist, *_filler(taken | {same_artist}, 499)]
    path = write_submission(tmp_path / "a.csv", "t", "e", recs)
    result = score_submission(path, made["out"] / "truth.json")
    category = entry["category"]
    assert result["per_category"][category]["r_precision"] == pytest.approx(
        (2 + 0.25 / len(held)) / 3
    )


def test_score_refuses_unknown_pids_and_seeds(made: dict[str, Any], tmp_path: Path) -> None:
    recs = perfect_recs(made["truth"])
    path = write_submission(tmp_path / "u.csv", "t", "e", {**recs, 999_999: recs_for(1)})
    with pytest.raises(InputFileError) as info:
        score_submission(path, made["out"] / "truth.json")
    assert info.value.position == "line 32"
    assert info.value.problem.startswith("pid 999999 is not in the challenge set of ")
    pid, entry = next((int(p), e) for p, e in made["truth"]["playlists"].items() if e["seeds"])
    recs[pid] = [entry["seeds"][0], *recs[pid][:499]]
    path = write_submission(tmp_path / "s.csv", "t", "e", recs)
    with pytest.raises(InputFileError, match="is a seed of the playlist"):
        score_submission(path, made["out"] / "truth.json")


def test_load_truth_refuses_other_files(made: dict[str, Any]) -> None:
    with pytest.raises(InputFileError, match="expected a truth file of format"):
        load_truth(made["out"] / "challenge_set.json")


# report -----------------------------------------------------------------------------------


def fake_scores(base: float) -> dict[str, Any]:
    per = {
        c: {"r_precision": base + c / 100, "ndcg": base * 2, "clicks": 10 - base}
        for c in range(1, 11)
    }
    overall = {"r_precision": base, "ndcg": base * 2, "clicks": 10 - base}
    return {"overall": overall, "per_category": per, "n_playlists": 10}


def test_comparison_table() -> None:
    text = comparison_table({"pop": fake_scores(0.1), "als": fake_scores(0.2)}, meta={"seed": 3})
    lines = text.splitlines()
    assert "- seed: 3" in lines
    assert "| pop | 0.1000 | 0.2000 | 9.900 | 10 |" in lines
    assert "| als | **0.2000** | **0.4000** | **9.800** | 10 |" in lines
    assert "| *2018 winner (vl6, 1M playlists)* | 0.2241 | 0.3946 | 1.784 | 10000 |" in lines
    assert "## NDCG per category" in lines
    assert (
        "| pop | 0.1100 | 0.1200 | 0.1300 | 0.1400 | 0.1500 | 0.1600 | 0.1700 | 0.1800 | 0.1900 | 0.2000 |"
        in lines
    )
    assert "4. no title, first 5 seed tracks" in lines


def test_comparison_table_single_model_and_json_keys() -> None:
    scores = json.loads(json.dumps(fake_scores(0.1)))  # category keys become strings
    text = comparison_table({"only": scores})
    assert "**" not in text
    assert "| only | 0.1100 |" in text


def test_report_refuses_empty_or_partial() -> None:
    with pytest.raises(ValueError, match="no results to report"):
        comparison_table({})
    with pytest.raises(ValueError, match="scores of model 'x' must have 'overall'"):
        comparison_table({"x": {"overall": {"ndcg": 1.0}}})


def test_write_report(tmp_path: Path) -> None:
    paths = write_report(
        {"pop": fake_scores(0.1), "als": fake_scores(0.2)}, tmp_path, meta={"a": 1}
    )
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads(paths["json"].read_text())
    assert doc["models"]["als"]["overall"]["ndcg"] == 0.4
    assert doc["meta"] == {"a": 1}
    assert paths["markdown"].read_text().startswith("# Challenge results")
    from matplotlib.image import imread

    image = imread(io.BytesIO(paths["png"].read_bytes()))
    assert image.shape[0] > 500 and image.shape[1] > 1000
    assert plot_results({"one": fake_scores(0.3)}, tmp_path / "one.png").exists()


# CLI --------------------------------------------------------------------------------------


def cli() -> typer.Typer:
    from segue.cli import _registry

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    _registry.register_all(app)
    return app


def test_cli_challenge_make_and_score(tmp_path: Path, source: tuple[Path, Any]) -> None:
    runner = CliRunner()
    out = tmp_path / "ch"
    result = runner.invoke(
        cli(),
        [
            "challenge",
            "make",
            str(source[0]),
            "--out",
            str(out),
            "--per-category",
            "2",
            "--seed",
            "4",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "read 120 playlists (800 distinct tracks) from 3 files"
    assert lines[1] == f"train: 100 playlists in 1 slice file(s) under {out / 'train'}"
    assert lines[3].startswith("  category  1 (title, no seed tracks): 2 playlists, ")
    truth = json.loads((out / "truth.json").read_text())
    sub = write_submission(tmp_path / "p.csv.gz", "t", "e", perfect_recs(truth))
    result = runner.invoke(cli(), ["challenge", "score", str(sub), str(out / "truth.json")])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[2].split() == ["all", "20", "1.0000", "1.0000", "0.000"]
    result = runner.invoke(
        cli(), ["challenge", "score", str(sub), str(out / "truth.json"), "--json"]
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout)["overall"]["r_precision"] == 1.0
    # what the library logs is shown on stderr, a warning with its label
    recs = perfect_recs(truth)
    del recs[min(recs)]
    partial = write_submission(tmp_path / "partial.csv", "t", "e", recs)
    result = runner.invoke(cli(), ["challenge", "score", str(partial), str(out / "truth.json")])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(
        f"warning: {partial}: 1 of 20 challenge playlists have no recommendations"
    ), result.stderr


def test_cli_errors(tmp_path: Path, source: tuple[Path, Any]) -> None:
    runner = CliRunner()
    out = tmp_path / "ch"
    result = runner.invoke(
        cli(),
        ["challenge", "make", str(source[0]), "--out", str(out), "--per-category", "50", "-q"],
    )
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: category 10 (title, random 100 seed tracks) needs 50 playlist(s)"
    )
    assert result.stdout == ""
    runner.invoke(
        cli(), ["challenge", "make", str(source[0]), "--out", str(out), "-q", "--per-category", "1"]
    )
    bad = tmp_path / "bad.csv"
    bad.write_text(f"team_info,t,e\n{_line(3, recs_for(3)[:10])}\n")
    result = runner.invoke(cli(), ["challenge", "score", str(bad), str(out / "truth.json")])
    assert result.exit_code == 1
    assert result.stderr == f"error: {bad} at line 2: pid 3: expected 500 track URIs, got 10\n"
    result = runner.invoke(
        cli(), ["challenge", "score", str(tmp_path / "nope.csv"), str(out / "truth.json")]
    )
    assert result.exit_code == 1
    assert (
        result.stderr == f"error: {tmp_path / 'nope.csv'}: cannot read: No such file or directory\n"
    )


# the whole pipeline -----------------------------------------------------------------------


class ToyPopularity(Recommender):
    """Tracks by playlist count: enough of a model to drive the pipeline."""

    name = "popularity"

    def __init__(self) -> None:
        pass

    def fit(self, snapshot: Any) -> Self:
        self.counts_ = np.asarray(snapshot.interactions.sum(axis=0)).ravel().astype(np.float32)
        self.fitted_ = True
        return self

    @property
    def n_tracks(self) -> int:
        return int(self.counts_.shape[0])

    def _score(self, seeds: np.ndarray, *, title: str | None) -> np.ndarray:
        return self.counts_.copy()


def test_evaluate_end_to_end(
    made: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segue.evaluation.run import evaluate
    from segue.models import registry

    monkeypatch.setattr(
        registry, "fit_model", lambda name, snapshot, **kw: ToyPopularity().fit(snapshot)
    )
    out = tmp_path / "results"
    results = evaluate(made["out"], ["popularity"], out, progress=False)
    scores = results["popularity"]
    assert scores["n_playlists"] == 30 and scores["n_missing"] == 0
    assert 0.0 < scores["overall"]["r_precision"] < 1.0
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"
    assert "| popularity |" in (out / "results.md").read_text()
    assert (
        json.loads((out / "results.json").read_text())["models"]["popularity"]["n_playlists"] == 30
    )
    sub = read_submission(out / "submissions" / "popularity.csv.gz")
    assert len(sub.recommendations) == 30
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        evaluate(made["out"], ["nope"], out)
    with pytest.raises(FileNotFoundError, match=r"no truth\.json"):
        (made["out"] / "truth.json").unlink()
        evaluate(made["out"], ["popularity"], out)


def test_evaluate_with_a_real_model(made: dict[str, Any], tmp_path: Path) -> None:
    from segue.evaluation.run import evaluate

    results = evaluate(made["out"], ["itemknn"], tmp_path / "r", progress=False)
    scores = results["itemknn"]
    assert scores["n_missing"] == 0
    assert 0.0 <= scores["overall"]["r_precision"] <= 1.0
    assert 0.0 <= scores["overall"]["clicks"] <= 51.0
    assert (
        len(read_submission(tmp_path / "r" / "submissions" / "itemknn.csv.gz").recommendations)
        == 30
    )


def test_recommend_fn_for_a_model() -> None:
    import pandas as pd

    from segue.evaluation.run import popularity_fallback, recommend_fn_for
    from segue.snapshot.arrays import Snapshot

    tracks = pd.DataFrame({"track_id": [tid(i) for i in range(6)]})
    playlists = pd.DataFrame({"pid": [0, 1, 2]})
    # track 4 in 3 playlists, track 1 in 2, the rest in 1 or none
    rows = ([0, 1, 2, 0, 1, 2, 0], [4, 4, 4, 1, 1, 0, 5])
    snapshot = Snapshot.from_frames(tracks, pd.DataFrame({"artist_key": range(6)}), playlists, rows)
    assert popularity_fallback(snapshot, 4) == [tid(4), tid(1), tid(0), tid(5)]
    recommend, fallback = recommend_fn_for(ToyPopularity().fit(snapshot), snapshot, fallback_size=3)
    assert fallback == [tid(4), tid(1), tid(0)]
    # unknown seeds are ignored, known seeds never come back
    assert recommend([tid(4), tid(99)], None, n=3) == [tid(1), tid(0), tid(5)]
    assert recommend([tid(99)], None, n=3) == []
    assert recommend([], "a title", n=2) == [tid(4), tid(1)]


def test_cli_challenge_run(
    made: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segue.evaluation import run as runner

    fallback = [tid(10_000 + i) for i in range(700)]

    def fake_make(model_name: str, home: Any) -> tuple[Any, list[str]]:
        assert model_name == "itemknn"
        return (lambda seeds, title, n=500: [tid(20_000)]), fallback

    monkeypatch.setattr(runner, "make_recommend_fn", fake_make)
    out = tmp_path / "s.csv"
    args = ["challenge", "run", str(made["out"] / "challenge_set.json"), "--out", str(out)]
    result = CliRunner().invoke(cli(), [*args, "--model", "itemknn", "--team", "x", "-q"])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"wrote {out}: 30 playlists; 30 completed from the popularity fallback (14,970 tracks); "
        "0 seeds or repeats dropped\n"
    )
    sub = read_submission(out)
    assert sub.team == "x"
    assert all(recs[0] == uri(20_000) for recs in sub.recommendations.values())


def test_cli_evaluate_needs_a_challenge_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli(), ["evaluate", str(tmp_path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {tmp_path / 'train'}: no train/ folder of training slices; expected a folder "
        "made by `segue challenge make`\n"
    )


def test_evaluate_reports_a_failing_model_and_goes_on(
    made: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from segue.core.errors import SegueError
    from segue.evaluation.run import evaluate

    caplog.set_level("INFO", logger="segue")
    from segue.models import registry

    def fit(name: str, snapshot: Any, **kw: Any) -> Any:
        if name == "spotify":
            raise SegueError("this app's Spotify access lacks the recommendations endpoint")
        return ToyPopularity().fit(snapshot)

    monkeypatch.setattr(registry, "fit_model", fit)
    results = evaluate(made["out"], ["spotify", "popularity"], tmp_path / "r", progress=False)
    assert list(results) == ["popularity"]
    assert "evaluate: spotify skipped: this app's Spotify access lacks" in caplog.text
    assert "spotify (skipped)" in (tmp_path / "r" / "results.md").read_text()
    with pytest.raises(SegueError, match="no model could be evaluated: spotify: "):
        evaluate(made["out"], ["spotify"], tmp_path / "r2", progress=False)
