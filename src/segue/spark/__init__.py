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


#: What to change when Spark runs out of memory, in local mode and on a cluster.
MEMORY_HINT = (
    "give it more memory (--spark-conf spark.driver.memory=8g in local mode, "
    "spark.executor.memory on a cluster) or smaller tasks "
    "(--spark-conf spark.sql.files.maxPartitionBytes=32m)"
)


def _from_spark(exc: BaseException) -> bool:
    """True when ``exc`` is pyspark's or py4j's, or was raised inside their code (a socket
    error on py4j's connection to the JVM, say)."""
    if type(exc).__module__.startswith(("pyspark", "py4j")):
        return True
    tb = exc.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith(("pyspark", "py4j")):
            return True
        tb = tb.tb_next
    return False


def spark_failure(exc: BaseException) -> str | None:
    """A one-line account of an error raised by Spark (a failed job, a path it cannot read,
    memory run out, a driver that died), or None when ``exc`` did not come from Spark."""
    if not _from_spark(exc):
        return None
    kind = type(exc)
    if isinstance(exc, ConnectionError) or kind.__name__ == "Py4JNetworkError":
        # py4j lost its JVM: the driver exited, most often for want of memory
        return (
            "the Spark driver stopped answering (its JVM exited; the log above says why, most "
            f"often java.lang.OutOfMemoryError): {MEMORY_HINT}"
        )
    text = str(exc).strip()
    if kind.__name__ == "Py4JJavaError":
        text = str(getattr(exc, "java_exception", "") or text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else kind.__name__
    if "OutOfMemoryError" in text:
        return f"Spark ran out of memory ({first[:300]}): {MEMORY_HINT}"
    return f"the Spark job failed: {first[:400]}"


__all__ = ["INSTALL_LINE", "MEMORY_HINT", "SparkUnavailable", "require_pyspark", "spark_failure"]
