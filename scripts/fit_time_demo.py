"""Fit time of the default hybrid on the demo catalog, beside a reference in the same run.

Usage::

    python scripts/fit_time_demo.py

Builds the demo catalog and snapshot in a temporary home, then fits the hybrid twice: the
reference (``select=False`` and a content model with ``tune=False``: the fit as it was before
the hybrid measured itself and the content settings were tuned) and the default. The ratio
is what the machine's load cannot change much; the content search's own budget is a count of
work (``tune_budget``, 300 million track scores), so it grows with the load like the rest.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="segue-fit-time-") as tmp:
        os.environ["SEGUE_DEMO_HOME"] = str(Path(tmp) / "demo")
        from segue.catalog.bundled import ensure_demo_catalog
        from segue.fitting.build import build_snapshot_from_catalog
        from segue.models.hybrid import HybridRecommender

        home = Path(tmp) / "demo"
        home.mkdir(parents=True)
        ensure_demo_catalog(home)
        snapshot = build_snapshot_from_catalog(home)
        times: dict[str, float] = {}
        for label, params in (
            (
                "reference (no content search, no measuring)",
                {"select": False, "content": {"tune": False}},
            ),
            ("default", {}),
        ):
            started = time.perf_counter()
            HybridRecommender(progress=False, **params).fit(snapshot)
            times[label] = time.perf_counter() - started
            print(f"{label}: {times[label]:.1f} s", flush=True)
        ref, default = times.values()
        print(f"default / reference: {default / ref:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
