from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segue.core import ids
from segue.core.ids import Kind

B62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
spotify_ids = st.text(alphabet=B62, min_size=22, max_size=22)
kinds = st.sampled_from(list(Kind))


@given(
    spotify_ids,
    kinds,
    st.sampled_from(["", "intl-de/", "intl-pt-BR/", "embed/"]),
    st.sampled_from(["", "?si=abc123", "?si=x&utm=y"]),
)
def test_urls_round_trip(sid: str, kind: Kind, prefix: str, query: str) -> None:
    ref = ids.parse(f"https://open.spotify.com/{prefix}{kind.value}/{sid}{query}")
    assert ref == ids.SpotifyRef(kind, sid)
    assert ids.parse(ref.uri) == ref
    assert ids.parse(ref.url) == ref


@given(spotify_ids, st.text(alphabet=B62 + "._-", min_size=1, max_size=30))
def test_legacy_playlist_forms(sid: str, user: str) -> None:
    assert ids.parse(f"spotify:user:{user}:playlist:{sid}") == ids.SpotifyRef(Kind.PLAYLIST, sid)
    assert ids.parse(f"https://open.spotify.com/user/{user}/playlist/{sid}").id == sid


@given(spotify_ids)
def test_bare_ids_take_the_callers_kind(sid: str) -> None:
    assert ids.parse(sid, Kind.ARTIST) == ids.SpotifyRef(Kind.ARTIST, sid)
    assert ids.parse(f"  {sid}\n", default_kind=Kind.TRACK).kind is Kind.TRACK
    assert ids.track_id(sid) == sid


@given(st.text(max_size=40))
def test_anything_else_is_refused_with_the_input_quoted(text: str) -> None:
    ref = ids.try_parse(text, default_kind=Kind.TRACK)
    if ref is None:
        with pytest.raises(ValueError) as info:
            ids.parse(text, default_kind=Kind.TRACK)
        assert repr(text) in str(info.value)
        assert "expected e.g." in str(info.value)
    else:
        assert ids.is_spotify_id(ref.id)


@pytest.mark.parametrize(
    ("ref", "fragment"),
    [
        ("spotify:track:123", "not 22 base62 characters"),
        ("spotify:song:6rqhFgbbKwnb9MLmUQDhG6", "unknown kind 'song'"),
        ("https://example.com/track/6rqhFgbbKwnb9MLmUQDhG6", "host 'example.com'"),
        ("https://open.spotify.com/track/", "a link has the form"),
        ("6rqhFgbbKwnb9MLmUQDhG6", "a bare id needs a kind"),
        ("", "it is empty"),
    ],
)
def test_malformed_references(ref: str, fragment: str) -> None:
    with pytest.raises(ValueError, match="not a Spotify reference") as info:
        ids.parse(ref)
    assert fragment in str(info.value)
    assert "https://open.spotify.com/track/6rqhFgbbKwnb9MLmUQDhG6" in str(info.value)


def test_kind_mismatch_names_both_kinds() -> None:
    with pytest.raises(ValueError, match="it is an album, expected a track"):
        ids.track_id("spotify:album:6rqhFgbbKwnb9MLmUQDhG6")


def test_non_string_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        ids.parse(42)  # type: ignore[arg-type]
