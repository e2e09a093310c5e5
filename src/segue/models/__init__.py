"""Recommenders behind one interface (see :mod:`segue.models.base`)."""
