"""The notify role. Channels and deliveries arrive with issue 5; until then it delivers nothing."""

from __future__ import annotations

import logging

from mintlog.runtime import Runtime

__all__ = ["NotifyRole"]

logger = logging.getLogger(__name__)


class NotifyRole:
    """Will deliver notifications and open incidents; today it only takes its place in the process."""

    name = "notify"

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def start(self) -> None:
        logger.info("notify role started: no notification channels exist in this version, nothing to deliver")

    async def stop(self) -> None:
        logger.info("notify role stopped")
