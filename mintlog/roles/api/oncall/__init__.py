"""The on-call area of the API: escalation policies and the one-click links of escalation notifications.

It provides `escalation` (the `EscalationStore`), `oncall_directory` (the `OnCallDirectory`, or None until
people and schedules are wired) and `link_keys` (the one-click link key) to every area's handlers.
"""

from __future__ import annotations

from collections.abc import Mapping

from mintlog.roles.api.common.area import ApiArea
from mintlog.roles.api.oncall.actions import ActionLinks
from mintlog.roles.api.oncall.escalation_policies import EscalationPolicies
from mintlog.roles.kit.link_keys import LinkKeys
from mintlog.runtime import Runtime

__all__ = ["AREA"]


def _provides(runtime: Runtime) -> Mapping[str, object]:
    return {
        "escalation": runtime.escalation,
        "oncall_directory": runtime.oncall,
        "link_keys": LinkKeys(runtime.settings.escalation, runtime.escalation),
    }


AREA = ApiArea("oncall", controllers=(EscalationPolicies, ActionLinks), provides=_provides)
