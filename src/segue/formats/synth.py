"""Synthetic playlists in the Million Playlist Dataset (MPD) format, at any scale.

The files follow the full official schema (``info`` + ``playlists[]`` with every playlist and
track field) and are shaped like the MPD's published statistics:

* **Catalog.** Artists with albums with tracks. Artist popularity is Zipf-Mandelbrot over the
  artist rank (calibrated on the MPD's top artists: the 20th artist has 1/4.6 of the first one's
  rows); popular artists have more tracks, and inside an artist a few tracks take most plays.
  The catalog grows with the number of playlists (:func:`default_catalog_size`) so that the
  distinct tracks actually drawn follow a Heaps' law line through the MPD: about 2,262,292 at
  1,000,000 playlists, 150,000 at 10,000 and 34,000 at 1,000.
* **Tastes.** Every artist belongs to one genre cluster ("rap", "country", "chill", ...). Each
  playlist has a latent primary cluster, a secondary one and sometimes a few favourite artists;
  its rows are drawn from those, with the rest from overall popularity. Tracks therefore co-occur
  by cluster, and the playlist title is drawn from the primary cluster's vocabulary most of the
  time, so collaborative and title models have something to learn.
* **Playlists.** Lengths 5-250 following the MPD's histogram (flat around 12-30, exponential
  tail, mean about 66), followers, edits, modification dates, collaborative flags (about 2%) and
  descriptions (about 2%) following the MPD's histograms.

Every id is 22 base62 characters, an invertible function of the entity index and the seed, so ids
never collide. Output is a pure function of the arguments: the same call writes the same bytes.
Each 1,000-playlist slice has its own random stream keyed by its first pid, so slices can be
generated on their own (``start_pid``) and agree with a larger run over the same catalog.

Generation is vectorised with numpy per slice and written with orjson; memory is bounded by the
catalog arrays (about 100 MB at full MPD scale) plus one slice.
"""

from __future__ import annotations

import bisect
import functools
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

__all__ = [
    "CLUSTERS",
    "MPD_ROWS_PER_PLAYLIST",
    "SLICE_SIZE",
    "SynthCatalog",
    "SynthResult",
    "base62_ids",
    "default_catalog_size",
    "generate",
    "iter_slices",
    "length_pmf",
    "make_playlists",
    "slice_name",
    "synthesize",
]

SLICE_SIZE = 1_000
MIN_LENGTH = 5
MAX_LENGTH = 250
MPD_PLAYLISTS = 1_000_000
MPD_ROWS_PER_PLAYLIST = 66.346428
# Catalog size: 91,500 + 2,223,200 * (n_playlists / 1M) ** 0.595 tracks. Fitted to catalog
# sizes found by bisection at 10k, 100k, 300k and 1M playlists such that the expected number of
# distinct tracks drawn, sum(1 - exp(-rows * p_i)) over track probabilities p_i, follows
# 2,262,292 * (n_playlists / 1M) ** 0.59: the MPD's count at 1M and about 38k at 1,000
# playlists, as measured on a 66k-row sample of real MPD playlists.
CATALOG_TRACKS_AT_1M = 2_314_700
_CATALOG_BASE = 91_500
_CATALOG_EXPONENT = 0.595
MIN_CATALOG_TRACKS = 20
HOT_TRACKS = 200_000
REPEAT_SHARE = 0.01  # rows repeating an earlier track of the same playlist

# Artist model (see SynthCatalog.build).
_ARTIST_ZIPF = 1.0
_ARTIST_OFFSET = 19 / (4.57 ** (1 / _ARTIST_ZIPF) - 1)  # 20th artist = 1/4.57 of the first
_TOP_ARTIST_TRACKS_AT_1M = 500.0
_TOP_SIZE_EXP = 0.4
_TRACKS_PER_POPULARITY = 0.45  # artist size grows as popularity ** 0.45
_WITHIN_ARTIST_ZIPF = 0.7
_NEW_ALBUM_PROB = 0.22  # about 3 tracks per album, as in the MPD (2.26M tracks, 735k albums)

# MPD collection window: playlists were created from 2010 and collected up to 2017-11-01.
_MPD_END = 1_509_494_400  # 2017-11-01 00:00 UTC
_MPD_START = 1_262_304_000  # 2010-01-01 00:00 UTC
_DAY = 86_400
_GENERATED_ON = "2017-12-03 08:41:42.057563"

_BASE62 = np.frombuffer(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8
)

# num_followers 1..20 as published for the MPD; beyond 20 a Pareto tail carries the rest.
_FOLLOWER_COUNTS = np.array(
    [754219, 149600, 46939, 19591, 9813, 5360, 3305, 2143, 1512, 1006,
     825, 632, 479, 359, 328, 290, 235, 207, 162, 138],
    dtype=np.float64,
)  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Vocabulary
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    """A genre or mood: its share of playlists, its titles and how its artists are named.

    ``titles`` are ordered by frequency (drawn with Zipf weights); ``artist_forms`` are
    ``str.format`` templates over ``{f}`` first name, ``{l}`` last name, ``{x}`` a stage word,
    ``{a}`` an adjective, ``{n}``/``{m}`` nouns, ``{p}`` a plural noun and ``{y}`` a second stage
    word.
    """

    name: str
    weight: float
    titles: tuple[str, ...]
    artist_forms: tuple[str, ...]
    emojis: tuple[str, ...] = ()


_PEOPLE = ("{f} {l}", "{f} {l}", "{f} {l}", "{f}", "{x}")
_BANDS = ("The {a} {p}", "{a} {n}", "{f} {l}", "The {p}", "{n} {m}", "{x}")

# fmt: off
CLUSTERS: tuple[Cluster, ...] = (
    Cluster("rap", 14, ("rap", "Rap", "hip hop", "lit", "Hip Hop", "turn up", "trap", "hype",
                        "bangers", "rap caviar", "RAP", "gucci", "litty", "savage"),
            ("Lil {x}", "Young {x}", "{x}", "{f} {l}", "MC {x}", "{x} Gang", "Big {x}", "{x}"),
            ("🔥", "💯", "😤", "💰")),
    Cluster("pop", 12, ("pop", "Pop", "top hits", "hits", "sing along", "feels", "happy",
                        "Top 40", "radio", "good vibes", "car jams", "pop hits"),
            _PEOPLE, ("✨", "💕", "🎶")),
    Cluster("country", 9, ("country", "Country", "old country", "country music", "new country",
                           "COUNTRY", "country 🤠", "backroads", "truck songs", "bonfire"),
            ("{f} {l}", "{f} {l}", "{l} Brothers", "The {l} Band", "{f} {l}", "{a} {n}"),
            ("🤠", "🐴", "🍻")),
    Cluster("chill", 8, ("chill", "Chill", "relax", "chill vibes", "mellow", "lofi", "study",
                         "coffee", "calm", "chillin", "acoustic", "rainy day"),
            _BANDS, ("😌", "☁️", "🌙", "🌿")),
    Cluster("rock", 7, ("rock", "Rock", "classic rock", "rock n roll", "ROCK", "rock music",
                        "alt rock", "guitar"),
            _BANDS, ("🎸", "🤘")),
    Cluster("edm", 6, ("edm", "EDM", "house", "dance", "electronic", "festival", "bass",
                       "techno", "rave", "drops"),
            ("DJ {x}", "{x}", "{x} & {y}", "{f} {l}", "{x}", "{a} {n}"), ("🎧", "⚡", "🕺")),
    Cluster("workout", 5, ("workout", "gym", "Workout", "running", "run", "lift", "cardio",
                           "GYM", "pump up", "beast mode"),
            ("{x}", "DJ {x}", "Lil {x}", "{f} {l}", "{x} Squad"), ("💪", "🏃", "🏋️")),
    Cluster("party", 5, ("party", "Party", "pregame", "turnt", "road trip", "summer", "PARTY",
                         "wild", "friday", "lit af"),
            ("{x}", "{f} {l}", "DJ {x}", "{x} & {y}"), ("🎉", "🍻", "🔥")),
    Cluster("r&b", 5, ("r&b", "rnb", "R&B", "slow jams", "smooth", "love songs", "bedroom",
                       "baby making", "soul", "late night"),
            _PEOPLE, ("💜", "🌹", "❤️")),
    Cluster("throwback", 5, ("throwback", "throwbacks", "Throwbacks", "2000s", "00s", "90s",
                             "middle school", "nostalgia", "90's", "early 2000s"),
            _PEOPLE + _BANDS, ("⏪", "📼")),
    Cluster("indie", 5, ("indie", "Indie", "alternative", "alt", "indie rock", "indie folk",
                         "folk", "hipster"),
            _BANDS, ("🌻", "🍂")),
    Cluster("oldies", 4, ("oldies", "Oldies", "70s", "60s", "80s", "motown", "classics",
                          "golden oldies", "80's"),
            ("{f} {l}", "The {p}", "{f} {l} & The {p}", "The {a} {p}"), ("📻",)),
    Cluster("christmas", 3, ("christmas", "Christmas", "xmas", "holiday", "christmas music",
                             "Christmas 🎄", "CHRISTMAS", "winter"),
            ("{f} {l}", "The {l} Singers", "{f} {l}"), ("🎄", "🎅", "❄️")),
    Cluster("worship", 3, ("worship", "Worship", "christian", "gospel", "church", "praise",
                           "Jesus", "sunday"),
            ("{f} {l}", "{n} Worship", "{a} {n}", "{l} Church"), ("🙏", "✝️")),
    Cluster("sad", 3, ("sad", "Sad Songs", "feels", "sad songs", "melancholy", "heartbreak",
                       "cry", "in my feels", "mood"),
            _PEOPLE + _BANDS, ("😢", "💔", "🥀")),
    Cluster("latin", 3, ("latin", "reggaeton", "spanish", "latino", "salsa", "bachata",
                         "Latin", "musica"),
            ("{f} {l}", "{x}", "{x} y {y}", "DJ {x}"), ("💃", "🌶️")),
    Cluster("disney", 2, ("disney", "Disney", "kids", "musicals", "broadway", "Disney Songs",
                          "musical"),
            ("{f} {l}", "Cast of {a} {n}", "{f} {l}"), ("🏰", "✨")),
    Cluster("sleep", 2, ("sleep", "sleepy", "Sleep", "ambient", "piano", "rain", "bedtime"),
            ("{a} {n}", "{f} {l}", "{n} Sounds"), ("😴", "🌙", "💤")),
    Cluster("metal", 2, ("metal", "heavy metal", "metalcore", "screamo", "Metal", "hardcore"),
            ("{a} {n}", "The {a} {p}", "{n} of {m}", "{x}"), ("🤘", "💀")),
    Cluster("emo", 2, ("emo", "pop punk", "punk", "warped tour", "Emo", "emo phase"),
            _BANDS, ("🖤",)),
    Cluster("jazz", 1.5, ("jazz", "classical", "Jazz", "blues", "piano", "dinner", "swing"),
            ("{f} {l}", "{l} Quartet", "{f} {l} Trio", "{f} {l}"), ("🎷", "🎹")),
    Cluster("kpop", 1.5, ("kpop", "k-pop", "KPOP", "korean", "kpop ❤️", "bias"),
            ("{x}", "{x}", "{a} {n}"), ("💖", "🇰🇷")),
)
# fmt: on

_GENERIC_TITLES = (
    "music", "new", "vibes", "jams", "my playlist", "songs", "good songs", "playlist", "2017",
    "2016", "car", "favorites", "mix", "random", "stuff", "best", "yeet", "BOP", "mixtape",
    "summer 2017", "spring", "fall", "wedding", "shower", "work", "me", "mine", "faves", "Music",
    "Awesome Playlist", "Mom's playlist", "Dad", "New Songs", "likes", "on repeat", "✔️", "🔥",
    "😎", "🎶", "⚡️", "💯",
)  # fmt: skip
_TITLE_NAMES = (
    "sarah", "abby", "jess", "SARAH", "emily", "mat", "Jake", "alex", "katie", "ben", "Lauren",
    "chris", "anna", "tyler", "megan", "josh", "Kayla", "ryan", "Olivia", "nick",
)  # fmt: skip
_TITLE_PREFIX = ("new ", "good ", "my ", "best ", "old ", "", "", "")
_DESCRIPTIONS = (
    "my favorite {c} songs", "{c} for days", "songs for {c}", "{c} {e}", "{e}{e}{e}",
    "the best {c}", "just {c}", "{c} vibes only", "all my {c} favorites", "for when you need {c}",
)  # fmt: skip

_FIRST = (
    "James", "Emma", "Noah", "Olivia", "Liam", "Ava", "Mason", "Sophia", "Ethan", "Mia", "Lucas",
    "Harper", "Logan", "Ella", "Caleb", "Grace", "Owen", "Chloe", "Jack", "Lily", "Luke", "Zoe",
    "Carter", "Nora", "Wyatt", "Riley", "Cole", "Hailey", "Blake", "Ruby", "Miles", "Ivy", "Dean",
    "Hazel", "Jesse", "Maren", "Cody", "Kacey", "Travis", "Amara", "Andre", "Jada", "Marcus",
    "Kiana", "Darius", "Tiana", "Mateo", "Lucia", "Diego", "Camila", "Min", "Yuna", "Hugo",
    "Elena", "Omar", "Layla", "Felix", "Nina", "Theo", "Sadie",
)  # fmt: skip
_LAST = (
    "Carter", "Brooks", "Hayes", "Bennett", "Reed", "Morgan", "Bryant", "Ellis", "Shaw", "Parker",
    "Lane", "Hart", "Fisher", "Wells", "Cross", "Rivers", "Stone", "Woods", "Fox", "Knight",
    "Moore", "Young", "King", "Wright", "Hill", "Green", "Adams", "Baker", "Nelson", "Mitchell",
    "Campbell", "Roberts", "Turner", "Phillips", "Evans", "Collins", "Stewart", "Morris",
    "Rogers", "Cook", "Bell", "Murphy", "Bailey", "Cooper", "Howard", "Ward", "Cox", "Diaz",
    "Torres", "Ramos", "Vega", "Cruz", "Park", "Kim", "Lee", "Santos", "Silva", "Nash", "Quinn",
)  # fmt: skip
_STAGE = (
    "Nova", "Blaze", "Kairo", "Zay", "Jetta", "Vex", "Onyx", "Sable", "Rico", "Jinx", "Ace",
    "Kash", "Taz", "Milo", "Echo", "Drift", "Lux", "Rune", "Sly", "Yung", "Pharo", "Nyx", "Dex",
    "Kilo", "Juno", "Tokyo", "Astro", "Saint", "Glacier", "Pixel", "Vandal", "Wavy", "Brisk",
    "Halo", "Mercury", "Cosmo", "Rocco", "Bishop", "Reign", "Zephyr",
)  # fmt: skip
_ADJ = (
    "Golden", "Wild", "Young", "Electric", "Lonely", "Broken", "Sweet", "Dark", "Burning", "Blue",
    "Crazy", "Little", "Midnight", "Silver", "Lost", "Hollow", "Neon", "Velvet", "Summer",
    "Paper", "Glass", "Secret", "Perfect", "Bad", "Good", "Slow", "Fast", "Cold", "Happy",
    "Heavy", "Empty", "Brave", "Gentle", "Bright", "Quiet", "Faded", "Late", "Last", "First",
    "Rolling", "Crimson", "Honey", "Savage", "Royal", "Free", "Sunset", "Wicked", "Holy",
)  # fmt: skip
_NOUN = (
    "Heart", "Night", "Fire", "Love", "Dream", "Road", "River", "Light", "Rain", "Sky", "Home",
    "Girl", "Boy", "Town", "City", "Wave", "Ghost", "Star", "Moon", "Sun", "Money", "Time",
    "Summer", "Friday", "Highway", "Island", "Garden", "Ocean", "Thunder", "Shadow", "Angel",
    "Devil", "Diamond", "Paradise", "Memory", "Story", "Kiss", "Dance", "Party", "Echo", "Heat",
    "Storm", "Wolf", "Tiger", "Rose", "Whiskey", "Truck", "Porch", "Bridge", "Signal", "Motion",
    "Gold", "Smoke", "Window", "Letter", "Season", "Feeling", "Promise", "Secret", "Body",
)  # fmt: skip
_PLURAL = (
    "Wolves", "Tigers", "Kings", "Ghosts", "Stars", "Lions", "Rebels", "Saints", "Strangers",
    "Horses", "Brothers", "Sisters", "Shadows", "Heartbreakers", "Drifters", "Lovers", "Arrows",
    "Foxes", "Ravens", "Giants", "Comets", "Pilots", "Kids", "Machines", "Waves", "Rivers",
)  # fmt: skip
_VERB = (
    "Hold", "Call", "Take", "Let", "Stay", "Tell", "Show", "Save", "Need", "Want", "Leave",
    "Find", "Kiss", "Love", "Miss", "Wake", "Run", "Drive", "Break", "Feel",
)  # fmt: skip
_OBJ = (
    "Me", "You", "It", "Me Home", "Me Down", "On", "Up", "Away", "Me Back", "Your Name", "It Slow",
    "My Hand", "The Night", "Me Now", "Over", "You Too", "It All", "This Down",
)  # fmt: skip
_EMOJI = ("🔥", "💯", "✨", "😎", "🎶", "❤️", "🌞", "⚡️", "👌", "🙌")


# ----------------------------------------------------------------------------------------------
# Hashing and ids
# ----------------------------------------------------------------------------------------------

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a bijection of uint64 arrays that scrambles every bit.

    Written out because numpy's generators give streams, not keyed per-index hashes, and ids
    must be a function of (seed, kind, index) alone so slices agree with each other.
    """
    z = np.asarray(x, dtype=np.uint64)
    z = z ^ (z >> np.uint64(30))
    z = z * _M1
    z = z ^ (z >> np.uint64(27))
    z = z * _M2
    return z ^ (z >> np.uint64(31))


def _kind_key(seed: int, kind: int) -> np.uint64:
    word = (seed * 64 + kind) % 2**64
    return np.uint64(int(_mix64(np.array([word], dtype=np.uint64))[0]))


def _hashes(indices: np.ndarray, key: np.uint64) -> np.ndarray:
    """uint64 hash per index, distinct indices giving distinct hashes (a keyed bijection)."""
    return _mix64(indices.astype(np.uint64) ^ key)


def base62_ids(indices: np.ndarray, key: np.uint64) -> list[str]:
    """22-char base62 ids for integer ``indices`` (any int array); distinct in, distinct out.

    The first 11 characters are the base62 digits of a bijective hash of the index (62**11 >
    2**64, so they are exact); the last 11 come from a second round, for a random look.
    """
    first = _hashes(indices, key)
    second = _mix64(first ^ _GOLDEN)
    digits = np.empty((len(first), 22), dtype=np.uint8)
    for half, word in enumerate((first, second)):
        w = word.copy()
        for k in range(10, -1, -1):
            digits[:, half * 11 + k] = (w % np.uint64(62)).astype(np.uint8)
            w //= np.uint64(62)
    text = _BASE62[digits].tobytes().decode("ascii")
    return [text[i : i + 22] for i in range(0, len(text), 22)]


# ----------------------------------------------------------------------------------------------
# Distributions
# ----------------------------------------------------------------------------------------------


@functools.cache
def length_pmf() -> np.ndarray:
    """Probabilities of playlist lengths 5..250 (float64, shape (246,)), MPD-shaped.

    The MPD's histogram is flat between about 12 and 31 tracks, lower below 12 and decays
    roughly exponentially above 30; the decay rate is solved so the mean is 66.35 as published.
    """
    lengths = np.arange(MIN_LENGTH, MAX_LENGTH + 1, dtype=np.float64)
    ramp = np.minimum(1.0, 0.45 + 0.55 * (lengths - MIN_LENGTH) / 7.0)

    def pmf(tau: float) -> np.ndarray:
        p = ramp * np.exp(-np.maximum(0.0, lengths - 30.0) / tau)
        return p / p.sum()

    lo, hi = 1.0, 1000.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if float(pmf(mid) @ lengths) < MPD_ROWS_PER_PLAYLIST:
            lo = mid
        else:
            hi = mid
    out = pmf((lo + hi) / 2)
    out.flags.writeable = False  # shared by every caller through the cache
    return out


def default_catalog_size(n_playlists: int) -> int:
    """Tracks in the catalog for ``n_playlists`` playlists (see ``CATALOG_TRACKS_AT_1M``).

    About 2.31M at 1M playlists (2.26M of them drawn), 128k at 1,000 (about 33k drawn).
    """
    grow = (CATALOG_TRACKS_AT_1M - _CATALOG_BASE) * (
        n_playlists / MPD_PLAYLISTS
    ) ** _CATALOG_EXPONENT
    return max(MIN_CATALOG_TRACKS, round(_CATALOG_BASE + grow))


# ----------------------------------------------------------------------------------------------
# Catalog
# ----------------------------------------------------------------------------------------------


@dataclass
class SynthCatalog:
    """Artists, albums and tracks as arrays; tracks sorted by (cluster, artist, album).

    Track ``t`` belongs to artist ``track_artist[t]`` and album ``track_album[t]``; artist ``a``
    owns tracks ``artist_start[a]:artist_start[a + 1]`` and cluster ``c`` owns tracks
    ``cluster_track_start[c]:cluster_track_start[c + 1]`` and artists
    ``cluster_artist_start[c]:cluster_artist_start[c + 1]``. ``track_cum`` is the cumulative
    sum of track probabilities (float64, shape (n_tracks,), ends at 1.0), so any contiguous
    range of tracks is sampled by one ``searchsorted``; ``artist_cum`` likewise for artists.
    """

    seed: int
    track_artist: np.ndarray  # int32 (n_tracks,)
    track_album: np.ndarray  # int32 (n_tracks,)
    track_duration: np.ndarray  # int32 (n_tracks,), milliseconds
    track_cum: np.ndarray  # float64 (n_tracks,)
    artist_start: np.ndarray  # int64 (n_artists + 1,)
    artist_cluster: np.ndarray  # int16 (n_artists,)
    artist_cum: np.ndarray  # float64 (n_artists,)
    cluster_track_start: np.ndarray  # int64 (n_clusters + 1,)
    cluster_artist_start: np.ndarray  # int64 (n_clusters + 1,)
    cluster_mass: np.ndarray  # float64 (n_clusters,), share of all plays
    album_first_track: np.ndarray = field(repr=False)  # int64 (n_albums,)
    # Lazily filled caches (object arrays indexed by artist / track, None until known).
    _artist_name: np.ndarray | None = field(default=None, repr=False)
    _artist_id: np.ndarray | None = field(default=None, repr=False)
    _artist_known: np.ndarray | None = field(default=None, repr=False)
    _fragment: np.ndarray | None = field(default=None, repr=False)
    _fragment_known: np.ndarray | None = field(default=None, repr=False)
    _hot: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_tracks(self) -> int:
        return len(self.track_artist)

    @property
    def n_artists(self) -> int:
        return len(self.artist_cluster)

    @property
    def n_albums(self) -> int:
        return len(self.album_first_track)

    @property
    def track_probability(self) -> np.ndarray:
        """Probability of each track under overall popularity (float64, (n_tracks,))."""
        return np.diff(self.track_cum, prepend=0.0)

    @classmethod
    def build(cls, n_tracks: int, seed: int = 0) -> SynthCatalog:
        """A catalog of exactly ``n_tracks`` tracks, deterministic for ``seed``.

        Artists by popularity rank ``j`` get weight ``(j + q) ** -1`` and about
        ``k0 * (weight / top weight) ** 0.45`` tracks (times lognormal noise), ``k0`` being 500
        at full MPD scale and shrinking with the catalog; within an artist the ``r``-th track
        gets a share ``∝ (r + 1) ** -0.7``. Albums group consecutive tracks of one artist.
        """
        if n_tracks < MIN_CATALOG_TRACKS:
            raise ValueError(f"n_tracks must be at least {MIN_CATALOG_TRACKS}, got {n_tracks}")
        rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
        top_size = max(
            1.0, _TOP_ARTIST_TRACKS_AT_1M * (n_tracks / CATALOG_TRACKS_AT_1M) ** _TOP_SIZE_EXP
        )
        ranks = np.arange(n_tracks, dtype=np.float64)
        rel = ((ranks + _ARTIST_OFFSET) / _ARTIST_OFFSET) ** -_ARTIST_ZIPF
        sizes = rel**_TRACKS_PER_POPULARITY * top_size * rng.lognormal(0.0, 0.5, n_tracks)
        sizes = np.clip(np.rint(sizes), 1, n_tracks).astype(np.int64)
        ends = np.cumsum(sizes)
        n_artists = int(np.searchsorted(ends, n_tracks)) + 1
        sizes = sizes[:n_artists]
        sizes[-1] -= int(ends[n_artists - 1]) - n_tracks
        artist_weight = rel[:n_artists] / rel[:n_artists].sum()

        cluster_of = _assign_clusters(artist_weight, rng)
        # Artists sorted by cluster; inside a cluster by popularity rank (a stable sort).
        order = np.argsort(cluster_of, kind="stable")
        sizes = sizes[order]
        artist_weight = artist_weight[order]
        cluster_of = cluster_of[order]

        artist_start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        track_artist = np.repeat(np.arange(n_artists, dtype=np.int32), sizes)
        rank_in_artist = np.arange(n_tracks, dtype=np.int64) - artist_start[track_artist]
        share = (rank_in_artist + 1.0) ** -_WITHIN_ARTIST_ZIPF
        share /= np.bincount(track_artist, weights=share, minlength=n_artists)[track_artist]
        # Deep cuts are not in rank order on an album: shuffle shares within each artist.
        shuffle_key = track_artist.astype(np.float64) + rng.random(n_tracks) * 0.5
        shuffle_key[artist_start[:-1]] = track_artist[artist_start[:-1]]  # the hit stays first
        share = share[np.argsort(shuffle_key, kind="stable")]
        track_p = artist_weight[track_artist] * share

        new_album = rng.random(n_tracks) < _NEW_ALBUM_PROB
        new_album[artist_start[:-1]] = True
        track_album = (np.cumsum(new_album) - 1).astype(np.int32)
        album_first_track = np.flatnonzero(new_album).astype(np.int64)

        duration = rng.lognormal(np.log(215_000.0), 0.28, n_tracks)
        duration = np.clip(np.rint(duration), 30_000, 1_200_000).astype(np.int32)

        n_clusters = len(CLUSTERS)
        cluster_artist_start = np.searchsorted(cluster_of, np.arange(n_clusters + 1)).astype(
            np.int64
        )
        cluster_track_start = artist_start[cluster_artist_start]
        track_cum = np.cumsum(track_p)
        track_cum /= track_cum[-1]
        artist_cum = np.cumsum(artist_weight)
        artist_cum /= artist_cum[-1]
        cluster_mass = np.bincount(cluster_of, weights=artist_weight, minlength=n_clusters)
        return cls(
            seed=seed,
            track_artist=track_artist,
            track_album=track_album,
            track_duration=duration,
            track_cum=track_cum,
            artist_start=artist_start,
            artist_cluster=cluster_of,
            artist_cum=artist_cum,
            cluster_track_start=cluster_track_start,
            cluster_artist_start=cluster_artist_start,
            cluster_mass=cluster_mass / cluster_mass.sum(),
            album_first_track=album_first_track,
        )

    # sampling ---------------------------------------------------------------------------------
    def sample_tracks(self, lo: np.ndarray, hi: np.ndarray, u: np.ndarray) -> np.ndarray:
        """One track per row from tracks ``lo[i]:hi[i]`` by popularity (int64 arrays)."""
        return _sample_range(self.track_cum, lo, hi, u)

    def sample_artists(self, lo: np.ndarray, hi: np.ndarray, u: np.ndarray) -> np.ndarray:
        """One artist per row from artists ``lo[i]:hi[i]`` by popularity (int64 arrays)."""
        return _sample_range(self.artist_cum, lo, hi, u)

    # names ------------------------------------------------------------------------------------
    def cached_fragments(self, tracks: np.ndarray) -> list[bytes]:
        """:meth:`track_fragments`, remembering those of the ``HOT_TRACKS`` most popular tracks.

        Popular tracks recur in every slice; caching only them keeps memory bounded (about
        70 MB) while saving about half of the string work at full MPD scale.
        """
        tracks = np.asarray(tracks, dtype=np.int64)
        if self._fragment is None or self._hot is None or self._fragment_known is None:
            self._fragment = np.full(self.n_tracks, None, dtype=object)
            self._fragment_known = np.zeros(self.n_tracks, dtype=bool)
            self._hot = np.zeros(self.n_tracks, dtype=bool)
            k = min(HOT_TRACKS, self.n_tracks)
            self._hot[np.argsort(-self.track_probability, kind="stable")[:k]] = True
        out = self._fragment[tracks]
        missing = np.flatnonzero(~self._fragment_known[tracks])
        if len(missing):
            idx = tracks[missing]
            out[missing] = _objects(self.track_fragments(idx))
            hot = self._hot[idx]
            self._fragment[idx[hot]] = out[missing[hot]]
            self._fragment_known[idx[hot]] = True
        fragments: list[bytes] = out.tolist()
        return fragments

    def track_fragments(self, tracks: np.ndarray) -> list[bytes]:
        """Per track index, its MPD track object as JSON without the opening ``{"pos":N,``.

        Each fragment reads ``"artist_name":"…","track_uri":"spotify:track:…",…,
        "album_name":"…"}`` in the official key order. Strings come from the module's
        vocabulary, which :func:`_json_safe` checks needs no escaping, so fragments are
        concatenated directly: this is the hot path, and a dict per row through orjson costs
        several times more.
        """
        tracks = np.asarray(tracks, dtype=np.int64)
        artists = self.track_artist[tracks]
        albums = self.track_album[tracks]
        uniq_alb, alb_inv = np.unique(albums, return_inverse=True)
        track_ids = base62_ids(tracks, _kind_key(self.seed, 1))
        artist_names, artist_ids = self._artist_strings(artists)
        album_ids = _objects(base62_ids(uniq_alb, _kind_key(self.seed, 3)))[alb_inv].tolist()
        album_names = self.album_names(uniq_alb)[alb_inv].tolist()
        columns = zip(
            artist_names.tolist(), track_ids, artist_ids.tolist(),
            self.track_names(tracks).tolist(), album_ids, self.track_duration[tracks].tolist(),
            album_names, strict=True,
        )  # fmt: skip
        return [(_TRACK_TEMPLATE % row).encode() for row in columns]

    def artist_names(self, artists: np.ndarray) -> np.ndarray:
        """Names of artist indices (object array of str); deterministic for the seed."""
        return self._artist_strings(artists)[0]

    def _artist_strings(self, artists: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(names, ids) of artist indices as object arrays of str.

        Cached per artist: there are at most ``n_artists`` of them and the popular ones recur
        in every slice.
        """
        artists = np.asarray(artists, dtype=np.int64)
        if self._artist_name is None or self._artist_id is None or self._artist_known is None:
            self._artist_name = np.full(self.n_artists, None, dtype=object)
            self._artist_id = np.full(self.n_artists, None, dtype=object)
            self._artist_known = np.zeros(self.n_artists, dtype=bool)
        names = self._artist_name[artists]
        new = np.unique(artists[~self._artist_known[artists]])
        if len(new):
            hashes = _hashes(new, _kind_key(self.seed, 4)).tolist()
            clusters = self.artist_cluster[new].tolist()
            self._artist_name[new] = _objects(
                [
                    _artist_name(h, CLUSTERS[c].artist_forms)
                    for h, c in zip(hashes, clusters, strict=True)
                ]
            )
            self._artist_id[new] = _objects(base62_ids(new, _kind_key(self.seed, 2)))
            self._artist_known[new] = True
            names = self._artist_name[artists]
        return names, self._artist_id[artists]

    def track_names(self, tracks: np.ndarray) -> np.ndarray:
        """Titles of track indices (object array of str); deterministic for the seed.

        One track in 16 features another artist of its cluster: "Title (feat. Name)".
        """
        tracks = np.asarray(tracks, dtype=np.int64)
        hashes = _hashes(tracks, _kind_key(self.seed, 5))
        names = _title_array(hashes, suffix=True)
        feat = np.flatnonzero((hashes >> np.uint64(60)) == 0)
        if len(feat):
            clusters = self.artist_cluster[self.track_artist[tracks[feat]]].astype(np.int64)
            lo = self.cluster_artist_start[clusters]
            span = (self.cluster_artist_start[clusters + 1] - lo).astype(np.uint64)
            guests = lo + ((hashes[feat] >> np.uint64(20)) % span).astype(np.int64)
            names[feat] = names[feat] + " (feat. " + self.artist_names(guests) + ")"
        return names

    def album_names(self, albums: np.ndarray) -> np.ndarray:
        """Titles of album indices (object array of str).

        Two in five albums are named after their lead track, the rest have a title of their
        own, sometimes "(Deluxe)", and a few are "Greatest Hits".
        """
        albums = np.asarray(albums, dtype=np.int64)
        hashes = _hashes(albums, _kind_key(self.seed, 6))
        form = hashes % np.uint64(20)
        lead = _hashes(self.album_first_track[albums], _kind_key(self.seed, 5))
        names = _title_array(np.where(form < 8, lead, hashes >> np.uint64(8)), suffix=False)
        deluxe = (form >= 17) & (form < 19)
        names[deluxe] = names[deluxe] + " (Deluxe)"
        names[form == 19] = "Greatest Hits"
        return names


_TRACK_TEMPLATE = (
    '"artist_name":"%s","track_uri":"spotify:track:%s","artist_uri":"spotify:artist:%s",'
    '"track_name":"%s","album_uri":"spotify:album:%s","duration_ms":%d,"album_name":"%s"}'
)


def _assign_clusters(artist_weight: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cluster of each artist (int16), so that each cluster's share of plays is its weight.

    The few hundred head artists carry much of the mass, so they are placed one by one (in
    rank order) into a cluster drawn in proportion to how far it is below its target share;
    the long tail is drawn at random by weight, where the law of large numbers does the rest.
    """
    target = np.array([c.weight for c in CLUSTERS], dtype=np.float64)
    target /= target.sum()
    n_artists = len(artist_weight)
    out = rng.choice(len(target), size=n_artists, p=target).astype(np.int16)
    head = min(n_artists, 2_000)
    mass = np.zeros(len(target))
    draws = rng.random(head)
    for j in range(head):
        deficit = np.maximum(target * (mass.sum() + artist_weight[j]) - mass, 0.0)
        p = deficit if deficit.sum() > 0 else target
        c = min(int(np.searchsorted(np.cumsum(p) / p.sum(), draws[j], side="right")), len(p) - 1)
        out[j] = c
        mass[c] += artist_weight[j]
    return out


def _objects(items: Sequence[Any]) -> np.ndarray:
    """A 1-D object array of ``items`` (for str, elementwise ``+`` concatenates in C)."""
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _sample_range(cum: np.ndarray, lo: np.ndarray, hi: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Indices in ``lo[i]:hi[i]`` drawn by the probabilities whose cumulative sum is ``cum``."""
    base = np.where(lo > 0, cum[np.maximum(lo - 1, 0)], 0.0)
    top = cum[hi - 1]
    target = base + u * (top - base)
    # Searching sorted keys walks the table in order (cache-friendly on millions of tracks).
    order = np.argsort(target)
    out = np.empty(len(target), dtype=np.int64)
    out[order] = np.searchsorted(cum, target[order], side="right")
    return np.clip(out, lo, hi - 1)


def _pick(h: int, words: Sequence[str]) -> str:
    return words[h % len(words)]


def _artist_name(h: int, forms: Sequence[str]) -> str:
    form = _pick(h, forms)
    return form.format(
        f=_pick(h >> 8, _FIRST),
        l=_pick(h >> 16, _LAST),
        x=_pick(h >> 24, _STAGE),
        a=_pick(h >> 32, _ADJ),
        n=_pick(h >> 40, _NOUN),
        m=_pick(h >> 48, _NOUN),
        p=_pick(h >> 44, _PLURAL),
        y=_pick(h >> 52, _STAGE),
    )


_ADJ_O, _NOUN_O, _VERB_O, _OBJ_O = (_objects(w) for w in (_ADJ, _NOUN, _VERB, _OBJ))
_SUFFIXES = _objects(["", " - Remix", " - Remix", " - Remastered", " - Live", " - Acoustic"])


def _word(h: np.ndarray, shift: int, words: np.ndarray) -> np.ndarray:
    return words[((h >> np.uint64(shift)) % np.uint64(len(words))).astype(np.int64)]


def _title_array(h: np.ndarray, *, suffix: bool) -> np.ndarray:
    """Song-like titles ("Golden Hour", "Hold Me Down", "River of the Night", ...) per hash."""
    form = (h % np.uint64(16)).astype(np.int64)
    adj, noun, noun2 = _word(h, 8, _ADJ_O), _word(h, 16, _NOUN_O), _word(h, 24, _NOUN_O)
    out = noun.copy()  # forms 5-8: one noun
    m = form < 5
    out[m] = adj[m] + " " + noun[m]
    m = (form >= 9) & (form < 12)
    out[m] = _word(h[m], 32, _VERB_O) + " " + _word(h[m], 40, _OBJ_O)
    m = (form >= 12) & (form < 14)
    out[m] = noun[m] + " " + noun2[m]
    m = form == 14
    out[m] = adj[m] + " " + noun[m] + " " + noun2[m]
    m = form == 15
    out[m] = noun[m] + " of the " + noun2[m]
    if suffix:
        code = ((h >> np.uint64(52)) % np.uint64(64)).astype(np.int64)
        m = code < len(_SUFFIXES) - 1
        out[m] = out[m] + _SUFFIXES[code[m] + 1]
    return out


def _json_safe(text: str) -> bool:
    """True when ``text`` can sit between JSON quotes as is (no quote, backslash, control)."""
    return not any(ch in '"\\' or ord(ch) < 0x20 for ch in text)


_VOCABULARY = (
    _FIRST, _LAST, _STAGE, _ADJ, _NOUN, _PLURAL, _VERB, _OBJ,
    ("Greatest Hits", " (Deluxe)", " (feat. "), tuple(_SUFFIXES.tolist()),
    *(c.artist_forms for c in CLUSTERS),
)  # fmt: skip
if not all(_json_safe(word) for words in _VOCABULARY for word in words):
    raise RuntimeError("segue.formats.synth vocabulary holds a character that JSON must escape")


# ----------------------------------------------------------------------------------------------
# Playlists
# ----------------------------------------------------------------------------------------------


@dataclass
class _SliceArrays:
    """A slice as arrays before it becomes JSON; every row array has length ``n_rows``."""

    pids: np.ndarray  # int64 (n,)
    lengths: np.ndarray  # int64 (n,)
    cluster: np.ndarray  # int64 (n,), primary taste
    tracks: np.ndarray  # int64 (n_rows,), playlist-major
    names: list[str]
    descriptions: list[str | None]
    collaborative: np.ndarray  # bool (n,)
    modified_at: np.ndarray  # int64 (n,)
    followers: np.ndarray  # int64 (n,)
    edits: np.ndarray  # int64 (n,)


def _slice_rng(seed: int, first_pid: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, 2, first_pid]))


def _draw_slice(catalog: SynthCatalog, first_pid: int, n: int) -> _SliceArrays:
    rng = _slice_rng(catalog.seed, first_pid)
    pmf = length_pmf()
    lengths = rng.choice(np.arange(MIN_LENGTH, MAX_LENGTH + 1), size=n, p=pmf).astype(np.int64)

    mass = catalog.cluster_mass
    cluster = rng.choice(len(mass), size=n, p=mass).astype(np.int64)
    second = rng.choice(len(mass), size=n, p=mass).astype(np.int64)
    focus_share = np.where(rng.random(n) < 0.6, rng.uniform(0.05, 0.3, n), 0.0)
    primary_share = (1.0 - focus_share) * rng.beta(6.0, 2.0, n)
    second_share = (1.0 - focus_share - primary_share) * 0.5
    bounds = np.cumsum(np.stack([focus_share, primary_share, second_share], axis=1), axis=1)

    # Up to three favourite artists per playlist, from its primary cluster by popularity.
    a_lo = np.repeat(catalog.cluster_artist_start[cluster], 3)
    a_hi = np.repeat(catalog.cluster_artist_start[cluster + 1], 3)
    favourites = catalog.sample_artists(a_lo, a_hi, rng.random(3 * n)).reshape(n, 3)
    n_favourites = rng.integers(1, 4, n)

    n_rows = int(lengths.sum())
    row_pl = np.repeat(np.arange(n), lengths)
    u = rng.random(n_rows)
    source = (u[:, None] >= bounds[row_pl]).sum(axis=1)  # 0 favourite, 1 primary, 2 second, 3 any
    fav = favourites[row_pl, (rng.random(n_rows) * n_favourites[row_pl]).astype(np.int64)]
    cts = catalog.cluster_track_start
    lo = np.select(
        [source == 0, source == 1, source == 2],
        [catalog.artist_start[fav], cts[cluster[row_pl]], cts[second[row_pl]]],
        0,
    )
    hi = np.select(
        [source == 0, source == 1, source == 2],
        [catalog.artist_start[fav + 1], cts[cluster[row_pl] + 1], cts[second[row_pl] + 1]],
        catalog.n_tracks,
    )
    tracks = catalog.sample_tracks(lo, hi, rng.random(n_rows))

    # Draws that repeat a track of the playlist are redrawn from the primary cluster, then from
    # everything; what still repeats after that stays.
    key = row_pl.astype(np.int64) * catalog.n_tracks + tracks
    for attempt in range(4):
        dup = _repeats(key)
        if not dup.any():
            break
        rows = np.flatnonzero(dup)
        pl = row_pl[rows]
        if attempt < 3:
            d_lo, d_hi = cts[cluster[pl]], cts[cluster[pl] + 1]
        else:
            d_lo, d_hi = np.zeros_like(pl), np.full_like(pl, catalog.n_tracks)
        tracks[rows] = catalog.sample_tracks(d_lo, d_hi, rng.random(len(rows)))
        key[rows] = pl * catalog.n_tracks + tracks[rows]
    # ... and then, as in the MPD (about 1% of its rows), a few tracks are added twice.
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    pos = np.arange(n_rows) - starts
    again = np.flatnonzero((rng.random(n_rows) < REPEAT_SHARE) & (pos > 0))
    earlier = starts[again] + (rng.random(len(again)) * pos[again]).astype(np.int64)
    tracks[again] = tracks[earlier]

    names, descriptions = _titles(rng, cluster)
    collaborative = rng.random(n) < 0.023
    recent = rng.random(n) < 0.35
    days = np.where(recent, rng.exponential(12.0, n), rng.exponential(520.0, n)).astype(np.int64)
    days %= (_MPD_END - _MPD_START) // _DAY + 1
    modified_at = _MPD_END - _DAY * days
    followers = _followers(rng, n)
    extra = rng.geometric(1.0 / (1.0 + 14.0 * np.sqrt(lengths / MPD_ROWS_PER_PLAYLIST)))
    edits = np.where(rng.random(n) < 0.04, 1, 1 + extra).astype(np.int64)
    pids = first_pid + np.arange(n, dtype=np.int64)
    return _SliceArrays(
        pids, lengths, cluster, tracks, names, descriptions, collaborative, modified_at,
        followers, edits,
    )  # fmt: skip


def _repeats(key: np.ndarray) -> np.ndarray:
    """True for every element equal to an earlier one (bool, same shape as ``key``)."""
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    out = np.zeros(len(key), dtype=bool)
    out[order[1:]] = ordered[1:] == ordered[:-1]
    return out


def _followers(rng: np.random.Generator, n: int) -> np.ndarray:
    """num_followers: the MPD's histogram for 1..20, a Pareto tail (alpha 1.2) above."""
    tail = 1.0 - _FOLLOWER_COUNTS.sum() / MPD_PLAYLISTS
    p = np.append(_FOLLOWER_COUNTS / MPD_PLAYLISTS, tail)
    k = rng.choice(len(p), size=n, p=p / p.sum()) + 1
    big = 21.0 * rng.random(n) ** (-1.0 / 1.2)
    return np.where(k == 21, np.minimum(big, 75_000.0).astype(np.int64), k).astype(np.int64)


# Zipf weights over each cluster's titles: its first title is the most common.
def _zipf_cdf(k: int) -> list[float]:
    """Inner bin edges of Zipf(1) over ``k`` items, for ``bisect`` (length ``k - 1``)."""
    w = 1.0 / np.arange(1, k + 1)
    return (np.cumsum(w) / w.sum())[:-1].tolist()


_TITLE_CUM = [_zipf_cdf(len(c.titles)) for c in CLUSTERS]


def _titles(rng: np.random.Generator, cluster: np.ndarray) -> tuple[list[str], list[str | None]]:
    """A title per playlist (mostly from its cluster) and an occasional description."""
    n = len(cluster)
    kind = rng.random(n)
    picks = rng.random((n, 6))
    names: list[str] = []
    descriptions: list[str | None] = []
    for i, c in enumerate(cluster.tolist()):
        spec = CLUSTERS[c]
        k, r = float(kind[i]), picks[i]
        if k < 0.70:
            title = spec.titles[bisect.bisect_right(_TITLE_CUM[c], r[0])]
            if r[1] < 0.12:
                title = _TITLE_PREFIX[int(r[2] * len(_TITLE_PREFIX))] + title
        elif k < 0.80:
            title = _GENERIC_TITLES[int(r[0] * len(_GENERIC_TITLES))]
        elif k < 0.84:
            title = _TITLE_NAMES[int(r[0] * len(_TITLE_NAMES))]
        elif k < 0.92 and spec.emojis:
            base = spec.titles[int(r[0] * len(spec.titles))]
            emoji = spec.emojis[int(r[2] * len(spec.emojis))]
            title = emoji if r[1] < 0.25 else f"{base} {emoji}"
        else:
            title = f"{spec.titles[int(r[0] * len(spec.titles))]} {2010 + int(r[2] * 8)}"
        if r[3] < 0.25:
            title = title.lower()
        elif r[3] < 0.32:
            title = title.title()
        if r[4] < 0.08:
            title += " "  # the MPD keeps stray trailing spaces
        names.append(title)
        if r[5] < 0.019:
            form = _DESCRIPTIONS[int(r[5] / 0.019 * len(_DESCRIPTIONS))]
            emoji = spec.emojis[0] if spec.emojis else _EMOJI[0]
            descriptions.append(form.format(c=spec.titles[0].lower(), e=emoji))
        else:
            descriptions.append(None)
    return names, descriptions


_POS = [b'{"pos":%d,' % i for i in range(MAX_LENGTH)]


def _slice_document(catalog: SynthCatalog, arrays: _SliceArrays, first: int) -> bytes:
    """The slice file's bytes: ``{"info": ..., "playlists": [...]}`` in the official key order.

    orjson writes the document; each playlist's ``tracks`` list goes in as an
    ``orjson.Fragment`` assembled from per-track fragments (see ``track_fragments``).
    """
    n = len(arrays.lengths)
    uniq, inverse = np.unique(arrays.tracks, return_inverse=True)
    fragments = catalog.cached_fragments(uniq)
    row_fragments = list(map(fragments.__getitem__, inverse.tolist()))
    durations = catalog.track_duration[arrays.tracks].astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(arrays.lengths)])
    row_pl = np.repeat(np.arange(n), arrays.lengths)
    pl_duration = np.zeros(n, dtype=np.int64)
    np.add.at(pl_duration, row_pl, durations)
    n_artists = _distinct_per_playlist(row_pl, catalog.track_artist[arrays.tracks])
    n_albums = _distinct_per_playlist(row_pl, catalog.track_album[arrays.tracks])

    playlists: list[dict[str, Any]] = []
    cols = zip(
        arrays.pids.tolist(), arrays.names, arrays.descriptions, arrays.collaborative.tolist(),
        arrays.modified_at.tolist(), arrays.lengths.tolist(), n_albums.tolist(),
        arrays.followers.tolist(), arrays.edits.tolist(), pl_duration.tolist(),
        n_artists.tolist(), offsets[:-1].tolist(), strict=True,
    )  # fmt: skip
    for pid, name, desc, collab, modified, length, albums, follow, edits, dur, artists, at in cols:
        rows = row_fragments[at : at + length]
        tracks = b"[" + b",".join(map(bytes.__add__, _POS[:length], rows)) + b"]"
        playlist: dict[str, Any] = {
            "name": name,
            "collaborative": "true" if collab else "false",
            "pid": pid,
            "modified_at": modified,
            "num_tracks": length,
            "num_albums": albums,
            "num_followers": follow,
            "tracks": orjson.Fragment(tracks),
            "num_edits": edits,
            "duration_ms": dur,
            "num_artists": artists,
        }
        if desc is not None:
            playlist["description"] = desc
        playlists.append(playlist)
    info = {"generated_on": _GENERATED_ON, "slice": f"{first}-{first + n - 1}", "version": "v1"}
    return orjson.dumps({"info": info, "playlists": playlists})


def _distinct_per_playlist(row_pl: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Distinct ``values`` per playlist (int64, (n_playlists,)); ``row_pl`` is sorted."""
    base = int(values.max()) + 1
    key = np.sort(row_pl.astype(np.int64) * base + values)
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    return np.bincount(key[first] // base, minlength=int(row_pl[-1]) + 1)


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------


def slice_name(first_pid: int, last_pid: int) -> str:
    """``mpd.slice.<first>-<last>.json``, the MPD's file name for a pid range."""
    return f"mpd.slice.{first_pid}-{last_pid}.json"


@dataclass
class SynthResult:
    """What :func:`synthesize` wrote."""

    paths: list[Path]
    n_playlists: int
    n_rows: int
    n_catalog_tracks: int
    n_unique_tracks: int
    n_unique_artists: int
    n_unique_albums: int
    seconds: float


def _check_args(n_playlists: int, n_tracks: int | None, seed: int, start_pid: int) -> None:
    for label, value in (("n_playlists", n_playlists), ("seed", seed), ("start_pid", start_pid)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool):
            raise TypeError(f"{label} must be an int, got {type(value).__name__}")
    if n_playlists < 1:
        raise ValueError(f"n_playlists must be at least 1, got {n_playlists}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    if start_pid < 0:
        raise ValueError(f"start_pid must be a non-negative int, got {start_pid}")
    if n_tracks is not None:
        if not isinstance(n_tracks, int | np.integer) or isinstance(n_tracks, bool):
            raise TypeError(f"n_tracks must be an int or None, got {type(n_tracks).__name__}")
        if n_tracks < MIN_CATALOG_TRACKS:
            raise ValueError(f"n_tracks must be at least {MIN_CATALOG_TRACKS}, got {n_tracks}")


def iter_slices(
    n_playlists: int, *, seed: int = 0, n_tracks: int | None = None, start_pid: int = 0
) -> Iterator[tuple[str, bytes]]:
    """Yield ``(file_name, file_bytes)`` per slice, in pid order, without touching the disk."""
    _check_args(n_playlists, n_tracks, seed, start_pid)
    catalog = SynthCatalog.build(n_tracks or default_catalog_size(n_playlists), seed)
    for first in range(start_pid, start_pid + n_playlists, SLICE_SIZE):
        n = min(SLICE_SIZE, start_pid + n_playlists - first)
        arrays = _draw_slice(catalog, first, n)
        yield slice_name(first, first + n - 1), _slice_document(catalog, arrays, first)


def synthesize(
    n_playlists: int,
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    n_tracks: int | None = None,
    start_pid: int = 0,
    on_slice: Callable[[int], None] | None = None,
) -> SynthResult:
    """Write ``n_playlists`` synthetic playlists as MPD slices into ``out_dir``.

    Slices hold 1,000 playlists (the last one the remainder) with pids from ``start_pid`` and
    are named ``mpd.slice.<first>-<last>.json``. ``n_tracks`` fixes the catalog size (default
    :func:`default_catalog_size`). ``on_slice(n)`` is called after each slice with its number
    of playlists, for progress bars. Files are written whole (to a temporary name, then
    renamed), so an interrupted run never leaves half a slice.
    """
    _check_args(n_playlists, n_tracks, seed, start_pid)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir must be a folder, but {str(out)!r} is a file")
    out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    catalog = SynthCatalog.build(n_tracks or default_catalog_size(n_playlists), seed)
    seen_tracks = np.zeros(catalog.n_tracks, dtype=bool)
    paths: list[Path] = []
    n_rows = 0
    for first in range(start_pid, start_pid + n_playlists, SLICE_SIZE):
        n = min(SLICE_SIZE, start_pid + n_playlists - first)
        arrays = _draw_slice(catalog, first, n)
        seen_tracks[arrays.tracks] = True
        n_rows += len(arrays.tracks)
        data = _slice_document(catalog, arrays, first)
        path = out / slice_name(first, first + n - 1)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        paths.append(path)
        if on_slice is not None:
            on_slice(n)
    drawn = np.flatnonzero(seen_tracks)
    return SynthResult(
        paths=paths,
        n_playlists=n_playlists,
        n_rows=n_rows,
        n_catalog_tracks=catalog.n_tracks,
        n_unique_tracks=len(drawn),
        n_unique_artists=len(np.unique(catalog.track_artist[drawn])),
        n_unique_albums=len(np.unique(catalog.track_album[drawn])),
        seconds=time.perf_counter() - began,
    )


def generate(
    n_playlists: int,
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    n_tracks: int | None = None,
    start_pid: int = 0,
) -> list[Path]:
    """Write synthetic MPD slices (see :func:`synthesize`); returns the file paths in pid order."""
    return synthesize(n_playlists, out_dir, seed=seed, n_tracks=n_tracks, start_pid=start_pid).paths


def make_playlists(
    n: int, seed: int = 0, *, n_tracks: int | None = None, start_pid: int = 0
) -> list[dict[str, Any]]:
    """``n`` synthetic playlists as MPD dicts (full schema), for tests; nothing is written.

    Equal to the playlists :func:`generate` writes for the same arguments.
    """
    out: list[dict[str, Any]] = []
    for _, data in iter_slices(n, seed=seed, n_tracks=n_tracks, start_pid=start_pid):
        out.extend(orjson.loads(data)["playlists"])
    return out
