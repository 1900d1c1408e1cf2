"""The incidents area of the API: alert rules, silences, incidents and their timelines, notification
channels and their webhook deliveries."""

from __future__ import annotations

from mintlog.roles.api.common.area import ApiArea
from mintlog.roles.api.incidents.alert_rules import AlertRules
from mintlog.roles.api.incidents.channels import Channels
from mintlog.roles.api.incidents.deliveries import Deliveries
from mintlog.roles.api.incidents.incidents import Incidents
from mintlog.roles.api.incidents.silences import Silences
from mintlog.roles.api.incidents.stats import IncidentStats

__all__ = ["AREA"]

AREA = ApiArea("incidents", controllers=(IncidentStats, Incidents, Silences, Channels, Deliveries, AlertRules))
