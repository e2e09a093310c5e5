"""segue's heavy steps on Apache Spark (``segue[spark]``): ingest, counts and ALS.

Nothing here is imported unless the Spark engine is asked for (``--engine spark``), and
pyspark itself only inside :func:`segue.spark.session.start`. What Spark produces is what the
one-machine path produces: a catalog, a snapshot and model artifacts in segue's formats, so
serving, the API, the web app and the hybrid never know which engine built them.
"""

from __future__ import annotations

from segue.core.errors import SegueError

INSTALL_LINE = "python -m pip install 'segue[spark]'"


class SparkUnavailable(SegueError):
    """The Spark engine was asked for but pyspark (or Java) is not there."""


def require_pyspark() -> None:
    """Raise :class:`SparkUnavailable` with the install line when pyspark is missing.

    The one import guard in segue: pyspark is the only optional dependency (the ``spark``
    extra). Only pyspark itself being absent is caught; any other failed import (a module
    pyspark needs, a bug) is raised as it is.
    """
    try:
        import pyspark  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name != "pyspark":
            raise
        raise SparkUnavailable(
            f"the Spark engine needs pyspark, which is not installed: run {INSTALL_LINE} "
            "(and have Java 17 or newer)"
        ) from None


def spark_failure(exc: BaseException) -> str | None:
    """A one-line account of an error raised by Spark (a failed job, a path it cannot read),
    or None when ``exc`` did not come from Spark."""
    kind = type(exc)
    if not kind.__module__.startswith(("pyspark", "py4j")):
        return None
    text = str(exc).strip()
    if kind.__name__ == "Py4JJavaError":
        text = str(getattr(exc, "java_exception", "") or text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else kind.__name__
    return f"the Spark job failed: {first[:400]}"


__all__ = ["INSTALL_LINE", "SparkUnavailable", "require_pyspark", "spark_failure"]
