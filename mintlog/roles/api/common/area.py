"""`ApiArea`: one folder of the API (`logs`, `admin`, `incidents`, and next `uptime`, `oncall`).

An area is a package of `mintlog.roles.api` whose `__init__` defines `AREA`, listed once in
`mintlog.roles.api.role.AREAS`. Its controllers get the runtime's dependencies
(`mintlog.roles.api.common.dependencies`) and whatever the area provides itself (`provides`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from litestar import Controller

from mintlog.runtime import Runtime

__all__ = ["ApiArea"]


def _nothing(_runtime: Runtime) -> Mapping[str, object]:
    return {}


@dataclass(frozen=True, slots=True)
class ApiArea:
    """The controllers of one area, and the dependencies only they use, built once per app from the runtime."""

    name: str
    controllers: Sequence[type[Controller]]
    provides: Callable[[Runtime], Mapping[str, object]] = _nothing
