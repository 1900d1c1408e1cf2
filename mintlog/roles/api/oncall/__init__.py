"""The on-call area of the API: people, schedules (with overrides, shifts and who is on call), calendar feeds,
escalation policies, the routes from severity and labels to policies, and the one-click links of escalation
notifications. docs/oncall.md and docs/escalation.md are the reference.

It provides `escalation` (the `EscalationStore`), `oncall_directory` (the `OnCallDirectory`) and `link_keys`
(the one-click link key) to the area's handlers.
"""

from __future__ import annotations

from collections.abc import Mapping

from mintlog.roles.api.common.area import ApiArea
from mintlog.roles.api.oncall.actions import ActionLinks
from mintlog.roles.api.oncall.escalation_policies import EscalationPolicies
from mintlog.roles.api.oncall.feed import CalendarFeed
from mintlog.roles.api.oncall.overrides import Overrides
from mintlog.roles.api.oncall.people import People
from mintlog.roles.api.oncall.routes import Routes
from mintlog.roles.api.oncall.schedules import Schedules
from mintlog.roles.kit.link_keys import LinkKeys
from mintlog.runtime import Runtime

__all__ = ["AREA"]


def _provides(runtime: Runtime) -> Mapping[str, object]:
    return {
        "escalation": runtime.escalation,
        "oncall_directory": runtime.oncall,
        "link_keys": LinkKeys(runtime.settings.escalation, runtime.escalation),
    }


AREA = ApiArea(
    "oncall",
    controllers=(People, Schedules, Overrides, CalendarFeed, EscalationPolicies, Routes, ActionLinks),
    provides=_provides,
)
"""Routes under `/v1/oncall/people`, `/v1/oncall/schedules[/{id}/overrides]`, `/v1/oncall/escalation-policies`,
`/v1/oncall/routes` (scopes `oncall:read`, `oncall:write`), the public `/v1/oncall/ical/{token}.ics` and
`/oncall/actions/{token}`."""
