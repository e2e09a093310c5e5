"""Starting (or joining) a Spark session from ``--spark-master`` and ``--spark-conf`` values."""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterable
from typing import Any

from segue.spark import SparkUnavailable, require_pyspark

DEFAULT_MASTER = "local[*]"

#: Settings segue starts a session with unless ``--spark-conf`` says otherwise: no web UI
#: (a server segue does not need), Arrow between the JVM and Python, and Kryo for the data
#: Spark's RDDs move and store (ALS's factor blocks in shuffles and checkpoints), more compact
#: than Java's own serialization, inside which a 6 GB driver ran out of heap at the full MPD.
DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
    "spark.serializer": "org.apache.spark.serializer.KryoSerializer",
}


def parse_conf(pairs: Iterable[str]) -> dict[str, str]:
    """``key=value`` strings as a dict; a pair without ``=`` is refused naming it."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SparkUnavailable(
                f"--spark-conf {pair!r}: expected key=value, e.g. spark.executor.memory=4g"
            )
        out[key.strip()] = value
    return out


def start(
    master: str = DEFAULT_MASTER, conf: dict[str, str] | None = None, app: str = "segue"
) -> Any:
    """A SparkSession on ``master`` (``local[*]``, ``spark://host:7077``, ``yarn``,
    ``k8s://...``) with ``conf`` on top of :data:`DEFAULT_CONF`; an existing session in this
    process is reused (Spark allows one per JVM)."""
    require_pyspark()
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise SparkUnavailable(
            "the Spark engine needs Java 17 or newer: install a JDK and put `java` on PATH "
            "(or set JAVA_HOME)"
        )
    # pyspark warns on import about pandas versions it has not been tested with: noise for
    # segue's users, who pass no pandas objects to Spark.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"pyspark\..*")
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).appName(app)
    for key, value in {**DEFAULT_CONF, **(conf or {})}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


__all__ = ["DEFAULT_CONF", "DEFAULT_MASTER", "parse_conf", "start"]
