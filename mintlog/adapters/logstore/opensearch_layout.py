"""Where the OpenSearch store keeps events: index names, the index template and the document mapping.

Index names are `{prefix}-{tenant}-YYYY.MM.DD`, one index per tenant and UTC day of the event's
`timestamp` (the seed's `mintlog-{tenant_id}-YYYY.MM.DD` with the default prefix), and, for events that
arrived more than two days late (imported history), `{prefix}-{tenant}-YYYY.MM@YYYY.MM`, one index per
tenant, UTC month of the event and UTC month it was received in (`mintlog.adapters.logstore.periods`), so
sparse old data makes a few indices instead of one small index per day. `{tenant}` is the
tenant id with every character outside `[a-z0-9-]` written as `_` and two lowercase hex digits per UTF-8
byte (`_` itself is `_5f`, `A` is `_41`), so:

- every valid tenant id (`[a-z0-9-]{1,40}`, `mintlog.domain.tenants`) appears unchanged;
- any tenant id gives a legal, lowercase name, and two tenants never share an index;
- the encoded tenant never holds a `.` and the prefix never holds a `-` (see `INDEX_PREFIX_PATTERN`), so
  an index name says unambiguously which prefix, tenant and period it belongs to: `tenant_periods` reads them
  back strictly, and tenant `a` never picks up the indices of tenant `a-b` although `{prefix}-a-*`
  matches them.

The template `{prefix}` applies to `{prefix}-*` (two prefixes' patterns never overlap, for the same
reason) and gives every index the mapping `mintlog.query.opensearch` compiles queries for (see
`index_template`). The document of an event is built in `mintlog.adapters.logstore.opensearch_documents`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from typing import Any
from urllib.parse import quote

from mintlog.adapters.logstore.periods import Period, parse_period
from mintlog.query.opensearch import MESSAGE_ANALYSIS

__all__ = [
    "DEFAULT_INDEX_PREFIX",
    "INDEX_PREFIX_PATTERN",
    "MAX_INDEX_NAME_BYTES",
    "MAX_NAMES_BYTES",
    "TEMPLATE_PRIORITY",
    "daily_index",
    "index_of",
    "index_template",
    "name_groups",
    "partition_index",
    "partition_name",
    "tenant_index_base",
    "tenant_periods",
    "validate_index_prefix",
]

DEFAULT_INDEX_PREFIX = "mintlog"
INDEX_PREFIX_PATTERN = r"^[a-z0-9][a-z0-9_]{0,63}$"
"""An index prefix: lowercase letters, digits and `_`, no `-` (it separates the prefix from the tenant)."""
MAX_INDEX_NAME_BYTES = 255
"""OpenSearch refuses longer index names."""
TEMPLATE_PRIORITY = 200
"""Priority of the store's index template, above catch-all templates (priority 0) a cluster may have."""
MAX_NAMES_BYTES = 3072
"""Most bytes of comma-separated, URL-quoted index names in one request path (`name_groups`): OpenSearch refuses
a request line over 4 KiB (`http.max_initial_line_length`); the rest is room for the method, the rest of the
path and the query parameters."""

_PREFIX = re.compile(INDEX_PREFIX_PATTERN)
_KEPT = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_PERIOD_SUFFIX = re.compile(r"-([0-9]{4})\.([0-9]{2})(?:\.([0-9]{2})|@([0-9]{4})\.([0-9]{2}))")


def validate_index_prefix(prefix: str) -> str:
    """`prefix` if it is a valid index prefix, else `ValueError`."""
    if _PREFIX.fullmatch(prefix) is None:
        raise ValueError(f"invalid OpenSearch index prefix {prefix!r}: use lowercase letters, digits and _")
    return prefix


def _encode_tenant(tenant_id: str) -> str:
    if all(character in _KEPT for character in tenant_id):
        return tenant_id
    return "".join(
        character
        if character in _KEPT
        else "".join(f"_{byte:02x}" for byte in character.encode("utf-8", "surrogatepass"))
        for character in tenant_id
    )


def tenant_index_base(prefix: str, tenant_id: str) -> str:
    """`{prefix}-{tenant}`: every index of the tenant is this followed by `-YYYY.MM.DD` or `-YYYY.MM@YYYY.MM`."""
    return f"{prefix}-{_encode_tenant(tenant_id)}"


def daily_index(prefix: str, tenant_id: str, day: date) -> str:
    """The index holding the events of `tenant_id` whose UTC day is `day` (and that arrived on time)."""
    return partition_index(prefix, tenant_id, Period(day))


def _period_suffix(period: Period) -> str:
    """`YYYY.MM.DD` (day partition) or `YYYY.MM@YYYY.MM` (month partition: event month @ receive month)."""
    start = period.start
    if period.received is None:
        return f"{start.year:04d}.{start.month:02d}.{start.day:02d}"
    received = period.received
    return f"{start.year:04d}.{start.month:02d}@{received.year:04d}.{received.month:02d}"


def partition_index(prefix: str, tenant_id: str, period: Period) -> str:
    """The index holding the events of `tenant_id` of `period`."""
    return index_of(tenant_index_base(prefix, tenant_id), period)


def index_of(base: str, period: Period) -> str:
    """The index of `period` of the tenant whose index base (`tenant_index_base`) is `base`."""
    return f"{base}-{_period_suffix(period)}"


def tenant_periods(base: str, index_names: Iterable[str]) -> dict[Period, str]:
    """The periods of the indices among `index_names` that belong to the tenant whose base is `base`.

    Names of other tenants, other prefixes or anything else (even if a wildcard on `base` matched them)
    are left out.
    """
    periods: dict[Period, str] = {}
    for name in index_names:
        if not name.startswith(base):
            continue
        match = _PERIOD_SUFFIX.fullmatch(name, len(base))
        if match is None:
            continue
        year, month, day, received_year, received_month = match.groups()
        text = f"{year}-{month}-{day}" if day is not None else f"{year}-{month}@{received_year}-{received_month}"
        period = parse_period(text)
        if period is not None:
            periods[period] = name
    return periods


def name_groups(names: Iterable[str], max_bytes: int = MAX_NAMES_BYTES) -> list[str]:
    """`names`, in order, as comma-separated expressions of at most `max_bytes` each once URL-quoted.

    Index names go in the path of a refresh or a delete, and OpenSearch refuses a request line over 4 KiB
    (`too_long_http_line_exception`): a write spanning many tenants' indices, or a retention run over many
    long names, makes one request per expression. Every name is in exactly one expression; a single name
    longer than `max_bytes` (not a valid index name: those are at most 255 bytes) is an expression of its own.
    """
    groups: list[str] = []
    current: list[str] = []
    length = 0
    for name in names:
        size = len(quote(name, safe=",*"))  # as `opensearch-py` quotes path parts: `@` is sent as `%40`
        if current and length + 1 + size > max_bytes:
            groups.append(",".join(current))
            current, length = [], 0
        length += size + (1 if current else 0)
        current.append(name)
    if current:
        groups.append(",".join(current))
    return groups


def partition_name(tenant_id: str, period: Period) -> str:
    """How the port names a partition: `{tenant_id}/{YYYY-MM-DD}` or `{tenant_id}/{YYYY-MM@YYYY-MM}`."""
    return f"{tenant_id}/{period.name}"


def index_template(prefix: str, *, shards: int, replicas: int) -> dict[str, Any]:
    """The composable index template `{prefix}` for the indices `{prefix}-*`.

    Mapping (`dynamic: strict`, so a document with an unexpected field is refused, never guessed):

    - `message`: text analyzed by `mintlog_text` (`MESSAGE_ANALYSIS`, the words Tantivy indexes), no norms;
    - `id`, `tenant_id`, `service`, `level`, `host`, `trace_id`, `span_id`, `source`: keyword;
    - `timestamp`: `date_nanos` (exact microseconds; 1970-01-01 to 2262-04-11), sort and range field;
    - `received_at`: date;
    - `fields`: `flat_object` of `mintlog.query.values.indexed_field_values(event.fields)`;
    - `field_pairs`: keyword, `fields.<key>=<text>` per value text of `fields` (what queries on `fields.*`
      run on, see `opensearch_documents`);
    - `field_numbers`: nested `{key: keyword, value: double}`, one per number in `fields` (for numeric
      aggregations on `fields.<key>`);
    - `event`: the event as msgspec JSON, neither indexed nor in doc values; `_source` keeps only it, so
      search returns exactly the event written while the indexed copies cost no stored bytes.
    """
    keyword: dict[str, Any] = {"type": "keyword"}
    return {
        "index_patterns": [f"{prefix}-*"],
        "priority": TEMPLATE_PRIORITY,
        "template": {
            "settings": {
                "index": {"number_of_shards": shards, "number_of_replicas": replicas},
                "analysis": MESSAGE_ANALYSIS,
            },
            "mappings": {
                "dynamic": "strict",
                "_source": {"includes": ["event"]},
                "properties": {
                    "id": keyword,
                    "tenant_id": keyword,
                    "timestamp": {"type": "date_nanos", "format": "strict_date_optional_time_nanos"},
                    "received_at": {"type": "date", "format": "strict_date_optional_time_nanos"},
                    "service": keyword,
                    "level": keyword,
                    "host": keyword,
                    "trace_id": keyword,
                    "span_id": keyword,
                    "source": keyword,
                    "message": {"type": "text", "analyzer": "mintlog_text", "norms": False},
                    "fields": {"type": "flat_object"},
                    "field_pairs": keyword,
                    "field_numbers": {
                        "type": "nested",
                        "properties": {"key": keyword, "value": {"type": "double"}},
                    },
                    "event": {"type": "keyword", "index": False, "doc_values": False},
                },
            },
        },
        "_meta": {"managed_by": "mintlog"},
    }
