"""Sources of track and artist facts, all returning the typed records of :mod:`segue.core.records`.

* :mod:`segue.providers.base` — the provider interface and the one retry/backoff/rate-limit policy.
* :mod:`segue.providers.spotify` — the Spotify Web API (network).
* :mod:`segue.providers.audio_service` — audio-feature services keyed by Spotify id (network).
* :mod:`segue.catalog.tables` — feature tables (CSV, CSV.gz, Parquet) imported by column name.
* :mod:`segue.snapshot.derived` — facts derived from the catalog itself, offline:
  playlist counts as popularity and playlist titles as crowd tags.

Modules are imported on demand: importing this package loads no network library.
"""
