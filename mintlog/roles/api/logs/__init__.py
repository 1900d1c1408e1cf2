"""The logs area of the API: search, aggregations, field discovery and context, the live tail, how plain text
is read (parsing and extraction rules) and the raw-event archive."""

from __future__ import annotations

from mintlog.roles.api.common.area import ApiArea
from mintlog.roles.api.logs.aggregate import Aggregate
from mintlog.roles.api.logs.archive import Archive
from mintlog.roles.api.logs.explore_routes import Explore
from mintlog.roles.api.logs.extraction_rules import ExtractionRules, Parsing
from mintlog.roles.api.logs.reading import log_reading
from mintlog.roles.api.logs.search import Search
from mintlog.roles.api.logs.tail import Tail

__all__ = ["AREA"]

AREA = ApiArea(
    "logs", controllers=(Search, Aggregate, Tail, Explore, Parsing, ExtractionRules, Archive), provides=log_reading
)
