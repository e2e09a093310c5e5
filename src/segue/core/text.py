"""Every normalisation of names and titles segue compares, in one module.

Each function is one rule for one use; they differ on purpose (what a duplicate is, what a
match across services is, what a typed name is), so each says what it keeps and what it drops:

* **artist names** known only by name (the catalog's ``name:`` keys): :func:`normalise_name`,
  and :func:`normalise_names` for an Arrow column (NFKC, case folded, spaces collapsed);
* **MPD statistics** and crowd-tag words: :func:`normalise_mpd_title` (lower case,
  punctuation as spaces);
* **matching another service's tracks and artists**: :func:`fold`,
  :func:`normalise_recording_title` (featured artists and remaster notes dropped),
  :func:`normalise_artist`, :func:`primary_artist`;
* **playlist titles** of the title model: :func:`normalise_playlist_title` and its key
  :func:`title_key` ("Work Out" and "workout!!" meet);
* **catalog names as title phrases** (the title model's name index): :func:`name_key`,
  :func:`name_key_column`, :func:`name_words`, :func:`cut_name_tails`;
* **names people type** (the service's name lookup): :func:`normalise_typed`,
  :func:`normalise_typed_column`.

A scalar function and its column form give the same result for every string
(``tests/test_text.py``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# ---------------------------------------------------------------------------------------------
# artist names known only by name
# ---------------------------------------------------------------------------------------------


def normalise_name(name: str) -> str:
    """Key of an artist known only by name: NFKC, case-folded, inner whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


#: The ASCII characters ``str.split()`` splits on, as a regular expression class.
_ASCII_SPACE = r"[\t\n\x0b\x0c\r\x1c-\x1f ]+"
#: What :func:`normalise_name` changes in an ASCII name besides its case.
_ODD_SPACE = r"[\t\n\x0b\x0c\r\x1c-\x1f]|  |^ | $"


def normalise_names(names: pa.Array | pa.ChunkedArray) -> pa.Array:
    """:func:`normalise_name` of each name (NULL stays NULL), as an Arrow string array.

    ASCII names are normalised in bulk by Arrow's string kernels (for them NFKC changes nothing
    and case-folding is lower-casing), the others one by one in Python.
    """
    if isinstance(names, pa.ChunkedArray):
        names = names.combine_chunks()
    names = names.cast(pa.string())
    bulk = pc.ascii_lower(names)
    # Most names hold single spaces only: only the others are rewritten.
    spaced = pc.match_substring_regex(bulk, _ODD_SPACE).fill_null(False)
    if pc.any(spaced).as_py():
        fixed = pc.utf8_trim(
            pc.replace_substring_regex(bulk.filter(spaced), _ASCII_SPACE, " "), characters=" "
        )
        bulk = pc.replace_with_mask(bulk, spaced, fixed)
    other = pc.invert(pc.string_is_ascii(names).fill_null(True))
    if not pc.any(other).as_py():
        return bulk
    rest = [normalise_name(n) for n in names.filter(other).to_pylist()]
    return pc.replace_with_mask(bulk, other, pa.array(rest, pa.string()))


# ---------------------------------------------------------------------------------------------
# MPD statistics
# ---------------------------------------------------------------------------------------------

_MPD_PUNCT = re.compile(r"[.,/#!$%^*;:{}=_`~()@]")


def normalise_mpd_title(name: str) -> str:
    """The MPD statistics' title normalisation: lower case, punctuation to spaces, spaces collapsed."""
    return " ".join(_MPD_PUNCT.sub(" ", name.lower()).split())


# ---------------------------------------------------------------------------------------------
# matching another service's tracks and artists
# ---------------------------------------------------------------------------------------------

_FEAT = r"(?:feat\.?|ft\.?|featuring|with|avec|con)"
# "(feat. X)", "[ft. X]", "(with X)" anywhere; "feat. X" to the end of the string.
_BRACKETED_FEAT = re.compile(rf"[\(\[]\s*{_FEAT}\s[^\)\]]*[\)\]]", re.IGNORECASE)
_TRAILING_FEAT = re.compile(rf"\s{_FEAT}\s.*$", re.IGNORECASE)
# Notes that do not change the recording: remasters, edits of the same take, formats.
_SAME_RECORDING = (
    r"(?:\d{4}\s+)?(?:digital(?:ly)?\s+)?remaster(?:ed)?(?:\s+\d{4})?(?:\s+version)?"
    r"|(?:single|album|lp|original|radio|mono|stereo)\s+(?:version|edit|mix)"
    r"|radio\s+edit|mono|stereo|explicit|clean|bonus\s+track|deluxe(?:\s+edition)?"
)
_BRACKETED_NOTE = re.compile(rf"[\(\[]\s*(?:{_SAME_RECORDING})\s*[\)\]]", re.IGNORECASE)
_DASH_NOTE = re.compile(rf"\s[-–—]\s*(?:{_SAME_RECORDING})\s*$", re.IGNORECASE)
_FOLD_PUNCT = re.compile(r"[^\w\s]")
_ARTIST_SPLIT = re.compile(rf"\s*(?:,|;|\s&\s|\sx\s|\s{_FEAT}\s|\s/\s)\s*", re.IGNORECASE)

#: Letters NFKD does not decompose.
_LETTERS = str.maketrans({"ø": "o", "Ø": "O", "ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "ł": "l"})


def fold(text: str) -> str:
    """Accents removed (é -> e, ø -> o), case folded, ``&`` as "and", punctuation as spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    bare = bare.translate(_LETTERS)
    bare = bare.casefold().replace("&", " and ")
    return " ".join(_FOLD_PUNCT.sub(" ", bare).split())


def normalise_recording_title(title: str) -> str:
    """A track title without featured artists and remaster/version notes, folded."""
    text = _BRACKETED_FEAT.sub(" ", title)
    text = _BRACKETED_NOTE.sub(" ", text)
    for _ in range(2):  # "Song - Remastered 2009 - Mono"
        text = _DASH_NOTE.sub("", text)
    text = _TRAILING_FEAT.sub("", text)
    return fold(text)


def normalise_artist(name: str) -> str:
    """An artist name folded, without a leading "the"."""
    text = fold(name)
    return text[4:] if text.startswith("the ") else text


def primary_artist(name: str) -> str:
    """The first artist of a credit like "A feat. B", "A, B & C", "A x B"."""
    head = _ARTIST_SPLIT.split(name.strip(), maxsplit=1)[0]
    return head or name


# ---------------------------------------------------------------------------------------------
# playlist titles
# ---------------------------------------------------------------------------------------------

_YEAR_2K = re.compile(r"\b2k(\d{2})\b")
_YEAR_APOSTROPHE = re.compile(r"(?<![\w])['\u2019`](\d{2})\b")
_LONG_RUN = re.compile(r"(.)\1{2,}")
_DOUBLE_LETTER = re.compile(r"([a-z])\1+")
_SPACES = re.compile(r"\s+")
# Characters that only shape an emoji (variation selectors, skin tones, joiners, keycaps).
_EMOJI_GLUE = {0xFE0E, 0xFE0F, 0x200D, 0x20E3, *range(0x1F3FB, 0x1F400)}


def _is_symbol(ch: str) -> bool:
    """Emoji and pictographs: Unicode symbol categories (So, Sk) outside ASCII."""
    return ord(ch) > 0x7F and unicodedata.category(ch) in ("So", "Sk", "Cs")


def normalise_playlist_title(title: str | None, *, emoji: bool = True) -> str:
    """A playlist name as a comparable lower-case string of space-separated tokens.

    Lower-cases (``casefold``), strips accents ("Café" -> "cafe"), turns "2k17" and "'17" into
    "2017", cuts runs of three or more equal characters to two ("chilllll" -> "chill"),
    replaces punctuation by spaces and keeps each emoji as a token of its own (or drops it
    with ``emoji=False``). ``None`` and blank names give ``""``.
    """
    if title is None:
        return ""
    if not isinstance(title, str):
        raise TypeError(
            f"normalise_playlist_title expected a str or None, got {type(title).__name__}"
        )
    text = unicodedata.normalize("NFKC", title).casefold()
    text = _YEAR_2K.sub(r"20\1", text)
    text = _YEAR_APOSTROPHE.sub(r"20\1", text)
    out: list[str] = []
    for ch in unicodedata.normalize("NFKD", text):
        code = ord(ch)
        if unicodedata.combining(ch) or code in _EMOJI_GLUE:
            continue
        if ch.isalnum():
            out.append(ch)
        elif _is_symbol(ch):
            if emoji:
                out.append(f" {ch} ")
            else:
                out.append(" ")
        else:
            out.append(" ")
    text = _LONG_RUN.sub(r"\1\1", "".join(out))
    return _SPACES.sub(" ", text).strip()


def title_key(title: str | None, *, emoji: bool = True) -> str:
    """The matching key of a name: :func:`normalise_playlist_title` without spaces or doubled
    letters.

    "Work Out", "workout" and "WORKOUT!!!" share the key "workout"; "chill", "chilll" and
    "chil" share "chil".
    """
    text = normalise_playlist_title(title, emoji=emoji).replace(" ", "")
    return _DOUBLE_LETTER.sub(r"\1", text)


# ---------------------------------------------------------------------------------------------
# catalog names as title phrases
# ---------------------------------------------------------------------------------------------

# Catalog names (artist, album, track) get keys like titles (lower case, no accents, no
# punctuation, spaces or doubled letters), by regular expressions and ``unicodedata`` calls
# that pandas runs over a whole column and that a query runs on its own phrases, so both sides
# are one function (title normalisation walks the characters in Python: too slow for the 2.26M
# track names of the full MPD). Emoji are dropped: names rarely carry them.
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe00-\ufe2f\u200d]")
_NON_WORD = re.compile(r"[\W_]+")
# Version tags of track and album names: "Song - Remastered 2011", "Song (feat. X)", "[Live]".
_NAME_TAIL = re.compile(r"\s+(?:[-\u2013\u2014]\s|[(\[]).*$")
_WORD_STEPS: tuple[tuple[str, Any, str], ...] = (
    ("normalize", "NFKC", ""),
    ("casefold", None, ""),
    ("normalize", "NFKD", ""),
    ("sub", _COMBINING, ""),
)
_KEY_STEPS: tuple[tuple[str, Any, str], ...] = (
    *_WORD_STEPS,
    ("sub", _NON_WORD, ""),
    ("sub", _LONG_RUN, r"\1\1"),
    ("sub", _DOUBLE_LETTER, r"\1"),
)


def _apply(steps: Sequence[tuple[str, Any, str]], text: str) -> str:
    for op, arg, repl in steps:
        if op == "normalize":
            text = unicodedata.normalize(arg, text)
        elif op == "casefold":
            text = text.casefold()
        else:
            text = arg.sub(repl, text)
    return text


def name_key(name: str) -> str:
    """The matching key of a catalog name or a phrase: "Kevin Gates" -> "kevingates", "Björk"
    -> "bjork" (the steps :func:`name_key_column` runs over whole columns)."""
    return _apply(_KEY_STEPS, name)


def name_key_column(values: pd.Series) -> pd.Series:
    """:func:`name_key` of every string of ``values`` (pandas' vectorised string methods)."""
    out = values.astype(str)
    for op, arg, repl in _KEY_STEPS:
        if op == "normalize":
            out = out.str.normalize(arg)
        elif op == "casefold":
            out = out.str.casefold()
        else:
            out = out.str.replace(arg, repl, regex=True)
    return out


def name_words(title: str) -> list[str]:
    """The words of a title as :func:`name_key` sees them (lower case, no accents or
    punctuation), for looking its phrases up among catalog names."""
    return _NON_WORD.sub(" ", _apply(_WORD_STEPS, title)).split()


def cut_name_tails(names: pd.Series) -> pd.Series:
    """Track and album names without their version tags ("Song - Remastered 2011",
    "Song (feat. X)", "Song [Live]" -> "Song")."""
    return names.astype(str).str.replace(_NAME_TAIL, "", regex=True)


# ---------------------------------------------------------------------------------------------
# names people type
# ---------------------------------------------------------------------------------------------

_TYPED_PUNCT = re.compile(r"[\W_]+")


def normalise_typed(text: str) -> str:
    """``text`` case folded, with punctuation as spaces and spaces collapsed."""
    return _TYPED_PUNCT.sub(" ", text.casefold()).strip()


def normalise_typed_column(values: pd.Series) -> pd.Series:
    """:func:`normalise_typed` of a column (vectorised)."""
    return (
        values.fillna("")
        .astype(str)
        .str.casefold()
        .str.replace(r"[\W_]+", " ", regex=True)
        .str.strip()
    )


__all__ = [
    "cut_name_tails",
    "fold",
    "name_key",
    "name_key_column",
    "name_words",
    "normalise_artist",
    "normalise_mpd_title",
    "normalise_name",
    "normalise_names",
    "normalise_playlist_title",
    "normalise_recording_title",
    "normalise_typed",
    "normalise_typed_column",
    "primary_artist",
    "title_key",
]
