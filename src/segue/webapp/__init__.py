"""The web app (Streamlit): ``segue app`` runs :data:`APP_SCRIPT`.

The script only lays out widgets; what it does with their values lives in
:mod:`segue.webapp.logic` as plain functions, so it can be tested without a browser.
"""

from __future__ import annotations

from pathlib import Path

#: The Streamlit script that ``segue app`` and ``segue demo`` run.
APP_SCRIPT = Path(__file__).with_name("app.py")

__all__ = ["APP_SCRIPT"]
