"""The segue web app: ``segue app`` (or ``streamlit run`` on this file).

Layout only: every decision is made by :mod:`segue.webapp.logic` over :class:`Service`. The
catalog is the one in the home folder, built once per run of this script from ``SEGUE_HOME``
(or the platform default); ``segue app`` and ``segue demo`` set it for the Streamlit process. Every failure becomes a plain message on the page.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from segue.core.errors import NotFittedError, SegueError
from segue.core.home import Home
from segue.fitting import demo
from segue.service.engine import Service
from segue.webapp import logic

log = logging.getLogger("segue.webapp")

st.set_page_config(page_title="segue: continue your playlist", page_icon="🎧", layout="wide")


@st.cache_resource(show_spinner=False)
def get_service(home: str) -> Service:
    """One service (and so one cache of models and variants) per home folder for the whole
    server."""
    return Service(Home(Path(home)))


#: This run's home.
HOME = Home.resolve(None)


def home() -> Home:
    return HOME


def show_failure(exc: BaseException) -> None:
    """A plain message for the person; the details go to the server's log only."""
    if isinstance(exc, NotFittedError | ValueError | SegueError):
        st.error(logic.command_for_home(str(exc), home()))
    else:
        st.error("Something went wrong while preparing the recommendations. Please try again.")
        log.exception("unexpected error in the web app")


# ----------------------------------------------------------------------------------------------
def sidebar_settings(service: Service) -> dict[str, Any]:
    """Model choice, result controls and filters (``usable`` is False for an unavailable model)."""
    options = logic.model_options(service)
    st.sidebar.header("Model")
    by_name = {o.name: o for o in options}
    name: str = st.sidebar.selectbox(
        "Model",
        list(by_name),
        index=logic.default_model_index(options),
        format_func=lambda n: logic.option_label(by_name[n]),
        key="model",
        label_visibility="collapsed",
    )
    chosen = by_name[name]
    usable = chosen.available
    description = logic.MODEL_DESCRIPTIONS.get(chosen.name)
    if description:
        st.sidebar.caption(description)
    if not usable:
        st.sidebar.warning(f"{chosen.label} is off here: {chosen.reason}")

    st.sidebar.header("Results")
    n = st.sidebar.slider("Number of results", 1, 100, 10, key="n")
    max_per_artist = st.sidebar.number_input(
        "Max tracks per artist (0 = no limit)",
        min_value=0,
        max_value=100,
        value=5,
        step=1,
        key="max_per_artist",
    )
    n_genres = None
    setting = service.genre_setting(chosen.name) if usable else None
    if setting is not None:
        n_genres = st.sidebar.slider(
            "Number of genres",
            min_value=1,
            max_value=setting.vocabulary,
            value=setting.effective,
            key=f"n_genres_{chosen.name}",
            help="How many of the catalog's genre terms the content features keep (the most frequent).",
        )
        if n_genres == setting.effective:
            n_genres = None  # the built model
        built = "all" if setting.current is None else str(setting.current)
        st.sidebar.caption(
            f"The built model uses {built} of the {setting.vocabulary} genres; another number "
            "refits the content model once (a few seconds on a large catalog) and keeps it for "
            "the next requests."
        )

    bounds = logic.catalog_bounds(service)
    with st.sidebar.expander("Filters"):
        exclude = st.text_area(
            "Exclude artists (one per line)",
            key="exclude",
            height=80,
            placeholder="Artist name or link",
        )
        year_range = None
        if bounds.years is not None and bounds.years[0] < bounds.years[1]:
            year_range = st.slider(
                "Release year", bounds.years[0], bounds.years[1], bounds.years, key="years"
            )
        popularity = st.slider("Popularity", 0, 100, (0, 100), key="popularity")
    return {
        "model": chosen.name,
        "usable": usable,
        "n": int(n),
        "max_per_artist": int(max_per_artist),
        "n_genres": n_genres,
        "exclude": exclude,
        "year_range": year_range,
        "popularity": (float(popularity[0]), float(popularity[1])),
    }


def input_form(service: Service) -> tuple[str, str, list[str], logic.Upload | None]:
    """The ways in: pasted links or names, a playlist file, and a catalog search."""
    left, right = st.columns([3, 2])
    with left:
        text = st.text_area(
            "Playlist, tracks or artists",
            key="text",
            height=150,
            placeholder=(
                "One per line: a Spotify playlist, track or artist link or URI, "
                "a song or artist name, or a playlist name from the catalog"
            ),
        )
        title = st.text_input(
            "Playlist title (optional)",
            key="title",
            placeholder="e.g. summer road trip",
            help="The title model and the hybrid use it; a title alone is enough to start.",
        )
    with right:
        uploaded = st.file_uploader(
            "Or upload a playlist file",
            type=list(logic.UPLOAD_TYPES),
            key="upload",
            help="An Exportify CSV, an MPD-format JSON playlist, or a text file of links.",
        )
        query = st.text_input("Search the catalog by track or artist", key="query")
        picked_before: list[str] = st.session_state.get("picked_ids", [])
        labels: dict[str, str] = dict(st.session_state.get("picked_labels", {}))
        found: dict[str, str] = {}
        try:
            found = logic.search_options(service, query)
        except ValueError as exc:
            st.error(str(exc))
        labels.update(found)
        said = st.empty()  # above the picks, filled once they are known
        picked: list[str] = st.multiselect(
            "Pick tracks from the search",
            options=list(labels),
            default=[p for p in picked_before if p in labels],
            format_func=lambda tid: labels.get(tid, tid),
            key=f"picked_{hash(tuple(sorted(labels)))}",
        )
        if query.strip() and not found:
            said.caption(f"No track or artist matches {query.strip()!r}.")
        elif found and set(found) <= set(picked):
            said.caption(f"Every match for {query.strip()!r} is picked.")
        st.session_state["picked_ids"] = picked
        st.session_state["picked_labels"] = {tid: labels[tid] for tid in picked}
    upload = logic.Upload(uploaded.name, uploaded.getvalue()) if uploaded is not None else None
    return text, title, picked, upload


#: Asks the browser whether it can reach Spotify (an opaque request: any answer means yes).
#: The players are Spotify's pages in frames: without Spotify they are grey boxes.
_SPOTIFY_REACH_JS = """
export default function(component) {
  const { setStateValue } = component;
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), 5000);
  fetch("https://open.spotify.com/favicon.ico",
        { mode: "no-cors", cache: "no-store", signal: stop.signal })
    .then(() => setStateValue("reachable", true))
    .catch(() => setStateValue("reachable", false))
    .finally(() => clearTimeout(timer));
}
"""


def spotify_reachable() -> bool | None:
    """True when the page reached Spotify, False when it could not, None while unknown."""
    try:
        probe = st.components.v2.component("segue_spotify_reach", js=_SPOTIFY_REACH_JS)
        with st.sidebar:
            result = probe(key="spotify_reach", on_reachable_change=lambda: None, height=0)
    except Exception:  # an older Streamlit or a test runner without a browser: keep them off
        log.debug("the Spotify reachability probe is unavailable", exc_info=True)
        return None
    value = result.get("reachable") if result is not None else None
    return value if isinstance(value, bool) else None


def show_results(service: Service, rec: Any, reachable: bool | None) -> None:
    if rec.messages:
        st.info("\n".join(f"- {m}" for m in rec.messages))
    if rec.unknown:
        shown = ", ".join(rec.unknown[:10]) + (" …" if len(rec.unknown) > 10 else "")
        st.warning(f"Not in the catalog ({len(rec.unknown)}): {shown}")
    if not rec.tracks:
        st.warning("No track passes the filters: loosen them and try again.")
        return
    heading = f"{len(rec.tracks)} tracks"
    if rec.title:
        heading += f" for “{rec.title}”"
    st.subheader(heading)
    started = logic.seed_summary(rec)
    if started:
        st.success(started)
    st.caption(logic.model_caption(rec.model))

    cols = st.columns(3)
    for col, export in zip(cols, logic.exports(rec), strict=True):
        col.download_button(
            f"Download {export.label}",
            export.data,
            file_name=export.file_name,
            mime=export.mime,
            key=f"download_{export.label}",
        )

    with st.expander("Save to Spotify"):
        st.caption(
            logic.command_for_home(
                "Creates a private playlist in your account (run `segue login` once first).",
                home(),
            )
        )
        name = st.text_input("Playlist name", value=rec.title or "segue mix", key="save_name")
        if st.button("Save to Spotify", key="save_spotify"):
            try:
                st.success(logic.save_to_spotify(rec, name, home=home()))
            except Exception as exc:
                show_failure(exc)

    try:
        reasons = logic.listener_reasons(service, rec)
    except Exception:  # the results stand without their reasons; the detail is still there
        log.exception("the reasons of the results could not be made")
        reasons = []
    tab_list, tab_table, tab_chart = st.tabs(["Tracks", "Table", "Feature profile"])
    with tab_list:
        left, right = st.columns(2)
        detail = left.toggle(
            "Show the models' technical detail",
            value=False,
            key="detail",
            help="The scores and ranks behind each track, as the command line and the API give them.",
        )
        if reachable:
            embeds = right.toggle("Show Spotify players", value=True, key="embeds")
        else:
            embeds = False
            right.caption(
                "Spotify players are off: checking whether this page can reach Spotify…"
                if reachable is None
                else "Spotify players are off: this page cannot reach open.spotify.com. "
                "The Table tab links each track."
            )
        for i, t in enumerate(rec.tracks, 1):
            text_col, player_col = st.columns([3, 2])
            with text_col:
                year = f" ({t.year})" if t.year else ""
                st.markdown(f"**{i}. {t.name}** — {', '.join(t.artists) or 'unknown artist'}{year}")
                if i <= len(reasons):
                    st.caption(reasons[i - 1])
                if detail:
                    score = f"score {t.score:.3f}" if t.score is not None else ""
                    why = " · ".join(p for p in (score, t.explanation or "") if p)
                    if why:
                        st.caption(f"`{rec.model}`: {why}")
            if embeds and i <= logic.MAX_EMBEDS:
                with player_col:
                    st.iframe(logic.embed_url(t.id), height=80)
    with tab_table:
        frame = logic.results_frame(rec, reasons)
        st.dataframe(
            frame,
            hide_index=True,
            column_config={
                "link": st.column_config.LinkColumn("link", display_text="open"),
                "score": st.column_config.NumberColumn(format="%.3f"),
                "why": st.column_config.TextColumn("technical detail"),
            },
        )
    with tab_chart:
        frame = logic.profile_frame(service, rec)
        if frame.empty:
            st.caption(
                "The catalog has no audio features for these tracks, so there is nothing to compare."
            )
        else:
            st.plotly_chart(logic.profile_figure(frame))
            st.caption("Mean features of the input and the recommendations, each scaled to 0–1.")


def recommend_page(service: Service, reachable: bool | None) -> None:
    st.title("segue")
    st.write("Continue a playlist with tracks that fit. Give a playlist, a few songs or an artist.")
    settings = sidebar_settings(service)
    text, title, picked, upload = input_form(service)
    clicked = st.button("Recommend", type="primary", disabled=not settings["usable"], key="go")
    if clicked:
        req = logic.AppRequest(
            text=text,
            picked=picked,
            upload=upload,
            title=title,
            model=settings["model"],
            n=settings["n"],
            max_per_artist=settings["max_per_artist"],
            n_genres=settings["n_genres"],
            exclude_artists=settings["exclude"],
            year_range=settings["year_range"],
            popularity_range=settings["popularity"],
        )
        try:
            with st.spinner("Finding tracks…"):
                st.session_state["result"] = logic.recommend(service, req)
        except Exception as exc:
            st.session_state.pop("result", None)
            show_failure(exc)
            return
    result = st.session_state.get("result")
    if result is not None:
        try:
            show_results(service, result, reachable)
        except Exception as exc:
            show_failure(exc)


def log_page() -> None:
    st.title("Log")
    st.write(
        "Tracks that reached the catalog after it was built (from playlists people brought, "
        "or fetched from the web), and each fetch segue made."
    )
    entry = logic.catalog_log(home())
    if entry.message:
        st.info(entry.message)
    st.subheader("Tracks added to the catalog")
    if entry.added.empty:
        st.caption(
            "None yet: tracks of an input playlist that the catalog does not know are added here."
        )
    else:
        st.dataframe(entry.added, hide_index=True)
    st.subheader("Fetches")
    if entry.fetches.empty:
        st.caption("No fetch recorded yet.")
    else:
        st.dataframe(entry.fetches, hide_index=True)


def about_page(service: Service) -> None:
    st.title("About segue")
    st.markdown(
        """
segue recommends tracks that continue a playlist. It learns from playlists in the format of
the Spotify Million Playlist Dataset and from track features (audio features, release year,
popularity, artist genres), and it runs offline on its own catalog.

**Models**

- **Hybrid** (the default) blends the collaborative, content and title models.
- **Model 1** and **Model 2** are content models: tracks whose features (genres, audio
  features, era, popularity) resemble the input's; Model 1 weights genres most, Model 2
  weights every block equally. *Number of genres* sets their genre vocabulary.
- **Collaborative** models recommend tracks that appear in playlists together with the
  input's tracks: item-item co-occurrence, or ALS matrix factorisation.
- **Spotify** asks Spotify's own recommendation service, where the app's credentials still
  have access to it.

Input tracks the catalog does not know are fetched and added when the network allows, so they
can be recommended after the next build (see the Log page). The bundled demo catalog is built
from the TidyTuesday Spotify songs table (2020-01-21), licensed for reuse.
"""
    )
    try:
        facts = logic.about_facts(service)
    except Exception as exc:
        show_failure(exc)
        return
    st.subheader("This catalog")
    st.table(pd.DataFrame({"value": [str(v) for v in facts.values()]}, index=list(facts)))
    sources = logic.catalog_sources(home())
    if sources:
        st.subheader("Sources that filled it")
        st.table(pd.DataFrame({"value": list(sources.values())}, index=list(sources)))
        st.caption(
            "Genres may come from Spotify, feature tables, MusicBrainz (CC0 / CC BY-NC-SA), "
            "Last.fm tags (non-commercial use, with attribution) or Deezer album genres."
        )
    chosen = logic.chosen_settings(service)
    if chosen:
        st.subheader("Settings the models chose when they were built")
        for name, text in chosen.items():
            st.markdown(f"- **{name}**: {text}")


# ----------------------------------------------------------------------------------------------
def demo_build_page() -> bool:
    """While ``segue demo`` builds the demo behind the server, a page with the build's progress
    (polled from its status file) instead of the app; True when it was shown. The page turns
    into the app once the build is done."""
    where = os.environ.get(demo.STATUS_ENV)
    if not where:
        return False
    status = demo.read_status(Path(where))
    if status is None or status.state == "ready":
        return False
    st.title("segue")
    build_progress(Path(where))
    return True


@st.fragment(run_every=1.0)
def build_progress(path: Path) -> None:
    status = demo.read_status(path)
    if status is None or status.state == "ready":
        st.rerun()  # the whole page: the app
        return
    if status.builder_gone():
        st.warning(
            "The demo build stopped before it finished (its process is gone). Run `segue demo` "
            "again in a terminal: it goes on from what was kept."
        )
    elif status.state == "failed":
        st.error(f"The demo could not be built: {status.message}")
        st.info(
            "The terminal that runs `segue demo` says the same. Fix the cause and run it again."
        )
    elif status.state == "interrupted":
        st.warning(status.message[:1].upper() + status.message[1:])
    else:
        st.subheader("Building the demo catalog…")
        step = f"step {min(status.done + 1, status.total)} of {status.total}: {status.step}"
        st.progress(status.fraction, text=step)
        st.caption(
            "First run only: segue builds the bundled demo catalog and fits its models (about "
            f"a minute; {status.running_for():.0f} s so far). This page turns into the app when "
            "they are ready."
        )
    if status.log:
        with st.expander("Build log"):
            st.code("\n".join(status.log), language=None)


def main() -> None:
    if demo_build_page():
        return
    page = st.sidebar.radio("Page", ["Recommend", "Log", "About"], key="page", horizontal=True)
    if page == "Log":
        try:
            log_page()
        except Exception as exc:
            show_failure(exc)
        return
    try:
        service = get_service(str(home().ensure().root))
        logic.catalog_bounds(service)  # loads the snapshot: fails early when nothing is built
    except Exception as exc:
        st.title("segue")
        show_failure(exc)
        st.info(
            "Nothing is built here yet: `segue demo` sets up the bundled demo catalog, or "
            + logic.command_for_home("`segue ingest` your MPD slices and `segue fit`.", home())
        )
        return
    if page == "About":
        about_page(service)
    else:
        recommend_page(service, spotify_reachable())


main()
