"""The alert role. Alert rules and their evaluator arrive with issue 5; until then it evaluates nothing."""

from __future__ import annotations

import logging

from mintlog.runtime import Runtime

__all__ = ["AlertRole"]

logger = logging.getLogger(__name__)


class AlertRole:
    """Will evaluate alert rules on their schedule; today it only takes its place in the process."""

    name = "alert"

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def start(self) -> None:
        logger.info("alert role started: no alert rules exist in this version, nothing to evaluate")

    async def stop(self) -> None:
        logger.info("alert role stopped")
