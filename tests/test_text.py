"""segue.core.text: every normalisation of names and titles, pinned on examples, and each
column form equal to its scalar form."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from segue.core.text import (
    cut_name_tails,
    fold,
    name_key,
    name_key_column,
    name_words,
    normalise_artist,
    normalise_mpd_title,
    normalise_name,
    normalise_names,
    normalise_playlist_title,
    normalise_recording_title,
    normalise_typed,
    normalise_typed_column,
    primary_artist,
    title_key,
)

# -- artist names known only by name ---------------------------------------------------------


def test_normalise_names_equals_normalise_name() -> None:
    names = [
        "  The  Beatles ",
        "ABC\tdef\x1c\x1f",
        "Beyonc\u00e9",
        "\ufb01 Stra\u00dfe",
        "",
        "x\x0by\x0cz\rw\nv",
        "\x85a",
        "\uff21\uff42\uff43",
        "a\u3000b\u00a0c",
        "\u0130stanbul",
        "MIXED case   TRAILING   ",
    ]
    assert normalise_names(pa.array(names)).to_pylist() == [normalise_name(n) for n in names]


@given(st.lists(st.text(max_size=12), max_size=20))
def test_normalise_names_property(names: list[str]) -> None:
    assert normalise_names(pa.array(names, pa.string())).to_pylist() == [
        normalise_name(n) for n in names
    ]


# -- matching another service's names ---------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Crazy In Love (feat. Jay-Z)", "crazy in love"),
        ("Here Comes The Sun - Remastered 2009", "here comes the sun"),
        ("Bohemian Rhapsody - 2011 Remaster", "bohemian rhapsody"),
        ("Hoppípolla", "hoppipolla"),
        ("Song [Radio Edit]", "song"),
        ('Lose Yourself - From "8 Mile" Soundtrack', "lose yourself from 8 mile soundtrack"),
        ("Dancing On My Own (Calvin Harris Remix)", "dancing on my own calvin harris remix"),
        ("Love Me Do - Mono / Remastered", "love me do mono remastered"),
    ],
)
def test_titles_normalise_without_featurings_and_remaster_notes(title, expected):
    assert normalise_recording_title(title) == expected


def test_artists_normalise_accents_case_and_the():
    assert normalise_artist("Beyoncé") == normalise_artist("BEYONCE") == "beyonce"
    assert normalise_artist("The Beatles") == "beatles"
    assert normalise_artist("MØ") == normalise_artist("Mø") == "mo"


# -- playlist titles and catalog names -------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Chill Vibes", "chill vibes"),
        ("chilllll vibes!!", "chill vibes"),
        ("  WORKOUT  ", "workout"),
        ("Summer 2k17", "summer 2017"),
        ("summer '17", "summer 2017"),
        ("Café del Mar", "cafe del mar"),
        ("Hip-Hop/R&B", "hip hop r b"),
        ("ｆｕｌｌ width", "full width"),
        ("🔥🔥 lit 🔥", "🔥 🔥 lit 🔥"),
        ("ok 👍🏽", "ok 👍"),
        ("", ""),
        (None, ""),
    ],
)
def test_playlist_titles_normalise(raw: str | None, normalized: str) -> None:
    assert normalise_playlist_title(raw) == normalized


def test_emoji_can_be_stripped() -> None:
    assert normalise_playlist_title("🔥 lit 🔥", emoji=False) == "lit"
    assert normalise_playlist_title("🎄", emoji=False) == ""
    assert title_key("🎄") == "🎄"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Work Out", "workout"),
        ("WORK OUT!!!", "work-out"),
        ("chill", "chilllll"),
        ("Summer 2k17", "summer '17"),
        ("Throwbacks", "throw backs"),
    ],
)
def test_variants_share_a_key(a: str, b: str) -> None:
    assert title_key(a) == title_key(b) != ""


def test_playlist_title_rejects_non_strings() -> None:
    with pytest.raises(TypeError, match="str"):
        normalise_playlist_title(12)  # type: ignore[arg-type]


def test_column_keys_equal_single_keys() -> None:
    values = [
        "Bj\u00f6rk",
        "Marco Antonio Sol\u00eds",
        "*NSYNC",
        "Tiësto",
        "Chilllll   Vibes!!",
        "\uff26\uff55\uff4c\uff4c width",
        "\u30d4\u30a2\u30ce Specialists",
        "Guns N' Roses",
        "",
    ]
    column = name_key_column(pd.Series(values)).tolist()
    assert column == [name_key(v) for v in values]
    assert name_key("Bj\u00f6rk") == "bjork"
    assert name_key("Chilllll   Vibes!!") == name_key("chill vibes") == "chilvibes"


# -- the other rules ---------------------------------------------------------------------------


def test_mpd_titles_lower_case_and_drop_the_mpd_punctuation() -> None:
    assert normalise_mpd_title("Chill   Vibes!!") == "chill vibes"
    assert normalise_mpd_title("Rock/Pop (2017)") == "rock pop 2017"
    # only the MPD statistics' punctuation list is dropped
    assert normalise_mpd_title("R&B - Hits?") == "r&b - hits?"


def test_fold_removes_accents_and_reads_ampersand_as_and() -> None:
    assert fold("Beyoncé & Jay-Z") == "beyonce and jay z"
    assert fold("Sigur Rós  Ø") == "sigur ros o"


@pytest.mark.parametrize(
    ("credit", "primary"),
    [("A feat. B", "A"), ("A, B & C", "A"), ("A x B", "A"), ("AC/DC", "AC/DC"), ("  ", "  ")],
)
def test_primary_artist_is_the_first_of_a_credit(credit: str, primary: str) -> None:
    assert primary_artist(credit) == primary


def test_name_words_and_tails() -> None:
    assert name_words("Björk's  Greatest-Hits!") == ["bjork", "s", "greatest", "hits"]
    tails = cut_name_tails(
        pd.Series(["Song - Remastered 2011", "Song (feat. X)", "Song [Live]", "Song"])
    )
    assert tails.tolist() == ["Song", "Song", "Song", "Song"]


def test_typed_names_fold_case_and_punctuation() -> None:
    assert normalise_typed("  Taylor   Swift!! ") == "taylor swift"
    assert normalise_typed("AC/DC") == "ac dc"
    assert normalise_typed_column(pd.Series(["AC/DC", None])).tolist() == ["ac dc", ""]


@given(st.lists(st.text(max_size=12), max_size=20))
def test_typed_column_equals_typed(names: list[str]) -> None:
    assert normalise_typed_column(pd.Series(names, dtype=object)).tolist() == [
        normalise_typed(n) for n in names
    ]
