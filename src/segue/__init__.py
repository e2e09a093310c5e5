"""segue: continue a playlist with tracks that fit."""

__version__ = "0.1.0"
