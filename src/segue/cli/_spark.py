"""The options ``ingest`` and ``fit`` share to run their heavy step on Apache Spark."""

from __future__ import annotations

import typer

from segue.cli._console import fail

ENGINE = typer.Option(
    "local",
    "--engine",
    help="local (this machine) or spark (Apache Spark, the spark extra: ingest; als and "
    "popularity for fit).",
)
SPARK_MASTER = typer.Option(
    "local[*]", "--spark-master", help="Spark master: local[*], spark://host:7077, yarn, k8s://..."
)
SPARK_CONF = typer.Option(None, "--spark-conf", help="Spark setting key=value (repeatable).")


def use_spark(engine: str) -> bool:
    """Whether ``--engine`` asks for Spark; refuses any value but local and spark."""
    if engine not in ("local", "spark"):
        raise fail(f"--engine {engine!r}: expected 'local' or 'spark'", 2)
    return engine == "spark"
