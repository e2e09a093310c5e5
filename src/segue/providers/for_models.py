"""Providers that models ask at query time, built for whoever runs the model.

Models never touch the network: :mod:`segue.models` imports nothing from :mod:`segue.providers`.
A model that needs a web service at query time names the kind of provider it asks
(:attr:`segue.models.base.Recommender.needs_provider`) and is handed one with
:meth:`~segue.models.base.Recommender.attach` by whoever runs it: the service
(:mod:`segue.service.engine`) and evaluation (:mod:`segue.evaluation.run`) build it here, from
the credentials of the :class:`~segue.core.home.Home` in use, and ask here whether the service
answers at all.

Kinds:

* ``"spotify"`` — a :class:`segue.providers.spotify.SpotifyProvider`; its ``recommendations``
  answers the ``spotify`` model.
"""

from __future__ import annotations

from typing import Any

from segue.core.home import Home

#: The kinds of provider a model may ask for.
KINDS = ("spotify",)


def _unknown(kind: str) -> ValueError:
    return ValueError(f"unknown kind of provider {kind!r}; expected one of: {', '.join(KINDS)}")


def build(kind: str, *, home: Home) -> Any:
    """A provider of ``kind`` with the credentials ``home`` leads to. Raises
    :class:`~segue.providers.credentials.CredentialsError` saying what is needed when there are
    none (a :class:`~segue.core.errors.SegueError`)."""
    if kind == "spotify":
        from segue.providers.spotify import SpotifyProvider

        return SpotifyProvider.from_env(home=home)
    raise _unknown(kind)


def available(kind: str, *, home: Home, refresh: bool = False) -> tuple[bool, str]:
    """``(True, "")`` when a provider of ``kind`` can be built from ``home``'s credentials and
    its service answers what models ask, else ``(False, why)`` (remembered for a while: see
    :func:`segue.providers.spotify.recommendations_available`)."""
    if kind == "spotify":
        from segue.providers.spotify import recommendations_available

        return recommendations_available(home=home, refresh=refresh)
    raise _unknown(kind)
