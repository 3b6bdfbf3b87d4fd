"""Keep MLflow's INFO chatter off adcore's stderr.

MLflow logs database creation and migrations at INFO on stderr. adcore's CLI promises a quiet
success and exactly one line on stderr for an error, so while a store or monitor is in use
these loggers are raised to WARNING (never lowered: a user who asked for less keeps it).
"""

from __future__ import annotations

import logging

QUIET_LOGGERS = ("mlflow.store.db.utils", "mlflow.store.model_registry", "alembic")


def quiet_mlflow_logging() -> None:
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)
