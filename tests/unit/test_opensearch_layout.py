"""Index names, documents and search requests of the OpenSearch store: pure functions, no cluster."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta, timezone
from urllib.parse import quote

import msgspec
import pytest

from mintlog.adapters.logstore.days import day_range
from mintlog.adapters.logstore.opensearch_documents import (
    decode_event,
    encode_document,
    field_numbers,
    indexed_fields,
    utc_instant,
)
from mintlog.adapters.logstore.opensearch_layout import (
    MAX_NAMES_BYTES,
    daily_index,
    name_groups,
    partition_index,
    tenant_index_base,
    tenant_periods,
    validate_index_prefix,
)
from mintlog.adapters.logstore.opensearch_search import (
    FIRST_INSTANT,
    LAST_INSTANT,
    adapt_query,
    index_expression,
    read_page,
    search_body,
)
from mintlog.adapters.logstore.periods import Period
from mintlog.domain.events import LogEvent
from mintlog.ports.logstore import SearchAfter, SearchQuery
from mintlog.query import parse
from mintlog.query.opensearch import to_opensearch
from mintlog.query.values import field_pairs, indexed_field_values

_LEGAL_INDEX_CHARACTERS = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_a_valid_tenant_id_appears_unchanged_in_the_seed_index_name() -> None:
    assert daily_index("mintlog", "acme-1", date(2024, 3, 9)) == "mintlog-acme-1-2024.03.09"


@pytest.mark.parametrize(
    "tenant_id", ["Acme", "acme_corp", "a/b", "a b", "ünïcode", "a.b", "*", "_", "a_41", "A", "a\udc80"]
)
def test_any_tenant_id_gives_a_legal_lowercase_index_name(tenant_id: str) -> None:
    name = daily_index("mintlog", tenant_id, date(2024, 3, 9))

    assert set(name) <= _LEGAL_INDEX_CHARACTERS
    assert tenant_periods(tenant_index_base("mintlog", tenant_id), [name]) == {Period(date(2024, 3, 9)): name}


def test_tenants_differing_in_case_or_escapes_never_share_an_index() -> None:
    tenants = ["acme", "Acme", "ACME", "a_41cme", "a-b", "a_2db", "a.b", "a_2eb", "ä", "_c3_a4"]

    names = {daily_index("mintlog", tenant, date(2024, 3, 9)) for tenant in tenants}

    assert len(names) == len(tenants)


def test_a_tenant_never_claims_the_indices_of_a_tenant_whose_id_starts_like_it() -> None:
    day = date(2024, 3, 9)
    others = [
        daily_index("mintlog", "a-b", day),
        daily_index("mintlog", "a-2024", day),
        daily_index("mintlog_x", "a", day),
        daily_index("mintlogx", "a", day),
        "mintlog-a-2024.03.09-restored",
        "mintlog-a-2024.02.30",
    ]
    own = daily_index("mintlog", "a", day)

    assert tenant_periods(tenant_index_base("mintlog", "a"), [*others, own]) == {Period(day): own}


@pytest.mark.parametrize("prefix", ["", "Mintlog", "mint-log", "_mintlog", "a" * 65, "min tlog"])
def test_an_index_prefix_must_be_lowercase_without_dashes(prefix: str) -> None:
    with pytest.raises(ValueError, match="index prefix"):
        validate_index_prefix(prefix)


def test_whole_months_and_years_become_wildcards_and_the_rest_is_listed() -> None:
    existing = [
        Period(day)
        for day in (date(2023, 12, 30), date(2023, 12, 31), date(2024, 1, 1), date(2024, 1, 2), date(2024, 2, 5))
    ]
    base = "mintlog-acme"

    everything = index_expression(base, existing, existing)
    from_new_year = index_expression(base, existing[2:], existing)
    one_day = index_expression(base, [Period(date(2024, 1, 2))], existing)

    assert everything == "mintlog-acme-2023.*,mintlog-acme-2024.*"
    assert from_new_year == "mintlog-acme-2024.*"
    assert one_day == "mintlog-acme-2024.01.02"
    partial = index_expression(base, existing[1:4], existing)
    assert partial == "mintlog-acme-2023.12.31,mintlog-acme-2024.01.*"


def test_a_month_index_of_old_events_reads_back_and_is_never_caught_by_a_month_wildcard() -> None:
    old = Period(date(2019, 3, 1), date(2026, 11, 1))
    days = [Period(date(2019, 3, 4)), Period(date(2019, 3, 5))]
    base = "mintlog-acme"
    name = partition_index("mintlog", "acme", old)

    assert name == "mintlog-acme-2019.03@2026.11"
    assert tenant_periods(base, [name, "mintlog-acme-2019.03@2026.13", "mintlog-acme-2019.03@"]) == {old: name}
    # Every day of March 2019 but not the month index: the wildcard must not reach the month index.
    assert index_expression(base, days, [*days, old]) == "mintlog-acme-2019.03.*"
    assert index_expression(base, [old], [*days, old]) == "mintlog-acme-2019.03@2026.11"
    assert index_expression(base, [*days, old], [*days, old]) == "mintlog-acme-2019.*"


def test_the_day_range_combines_the_request_range_and_the_query_time_window() -> None:
    now = datetime(2024, 3, 10, 12, tzinfo=UTC)

    bounded = day_range(SearchQuery("acme", parse("timestamp:>now-1d"), now=now, end=datetime(2024, 3, 10, tzinfo=UTC)))
    contradictory = day_range(SearchQuery("acme", parse("timestamp:<2024-01-01 AND timestamp:>2024-02-01"), now=now))

    assert bounded == (date(2024, 3, 9), date(2024, 3, 9))
    first, last = contradictory
    assert first is not None
    assert last is not None
    assert first > last


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("timestamp:<1960-01-01", {"lt": FIRST_INSTANT}),
        ("timestamp:<=1960-01-01", {"lt": FIRST_INSTANT}),
        ("timestamp:>=1900-01-01", {"gte": FIRST_INSTANT}),
        ("timestamp:>2300-01-01", {"gt": LAST_INSTANT}),
        ("timestamp:<9999-01-01", {"lte": LAST_INSTANT}),
        ("timestamp:>=2024-01-01", {"gte": "2024-01-01T00:00:00.000000Z"}),
    ],
)
def test_time_bounds_outside_date_nanos_are_clamped_without_changing_the_matches(
    query: str, expected: dict[str, str]
) -> None:
    dsl = adapt_query(to_opensearch(parse(query), datetime(2024, 3, 10, tzinfo=UTC)))

    bounds = dsl["range"]["timestamp"]
    assert {key: value for key, value in bounds.items() if key != "format"} == expected


def test_clauses_on_the_flat_object_subfield_run_on_the_field_pairs_keyword() -> None:
    dsl = adapt_query(
        to_opensearch(parse("fields.user_id:u1 OR fields.path:/v1/* OR _exists_:fields.x"), datetime.now(UTC))
    )

    text = msgspec.json.encode(dsl).decode()
    assert "_valueAndPath" not in text
    assert '"term":{"field_pairs":"fields.user_id=u1"}' in text
    assert '"prefix":{"field_pairs":"fields.x="}' in text


def test_the_search_request_filters_on_the_tenant_sorts_by_time_and_id_and_counts_one_past_the_cap() -> None:
    after = SearchAfter(timestamp_us=1_709_985_600_000_001, event_id="evt-9")
    query = SearchQuery("acme", parse("level:error"), order="asc", size=20, after=after, total_cap=100)

    body = search_body(query, to_opensearch(query.node, query.now))

    assert body["query"]["bool"]["filter"][0] == {"term": {"tenant_id": "acme"}}
    assert body["sort"] == [{"timestamp": {"order": "asc"}}, {"id": {"order": "asc"}}]
    assert body["search_after"] == [1_709_985_600_000_001_000, "evt-9"]
    assert body["track_total_hits"] == 101
    assert body["size"] == 20


@pytest.mark.parametrize(
    ("value", "relation", "cap", "expected"),
    [(5, "eq", 10, (5, False)), (10, "eq", 10, (10, False)), (11, "eq", 10, (10, True)), (0, "gte", 0, (0, True))],
)
def test_a_total_past_the_cap_is_the_cap_and_a_lower_bound(
    value: int, relation: str, cap: int, expected: tuple[int, bool]
) -> None:
    response = {"hits": {"total": {"value": value, "relation": relation}, "hits": []}}

    page = read_page(response, cap)

    assert (page.total, page.total_is_lower_bound) == expected


def test_a_document_keeps_the_exact_event_and_indexes_its_parts() -> None:
    event = LogEvent(
        id="evt-1",
        tenant_id="acme",
        timestamp=datetime(2024, 3, 9, 23, 30, 0, 123_456, tzinfo=timezone(timedelta(hours=-2))),
        received_at=datetime(2024, 3, 10, 1, 30, 1, tzinfo=UTC),
        service="checkout",
        level="error",
        message="card declined",
        host="web-1",
        fields={"status": 402, "ratio": 0.5, "retry": True, "tags": ["a", 7, 1.5, False, None], "big": 2**63 - 1},
    )

    document = msgspec.json.decode(encode_document(event))

    assert decode_event(document["event"]) == event
    assert document["timestamp"] == "2024-03-10T01:30:00.123456Z"
    assert document["fields"]["status"] == "402"
    assert "fields.tags=a" in document["field_pairs"]
    assert "fields.retry=true" in document["field_pairs"]
    assert document["field_numbers"] == [
        {"key": "status", "value": 402.0},
        {"key": "ratio", "value": 0.5},
        {"key": "tags", "value": 7.0},
        {"key": "tags", "value": 1.5},
        {"key": "big", "value": float(2**63 - 1)},
    ]
    assert "trace_id" not in document


def test_only_finite_numbers_that_are_not_booleans_count_as_field_numbers() -> None:
    numbers = field_numbers(
        {"a": float("nan"), "b": float("inf"), "c": True, "d": "5", "e": [1, "2", None], "f": -0.0, "g": 10**400}
    )

    assert [(number.key, number.value) for number in numbers] == [("e", 1.0), ("f", -0.0)]


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"status": 402, "ratio": 0.5, "retry": True, "off": False, "none": None, "text": "card declined"},
        {"a=b": "c", "back\\slash": "x", "a": "b=c", "nan": float("nan"), "inf": float("-inf"), "huge": 10**400},
        {"tags": ["a", 7, 1.5, False, None, "a", 7], "empty": [], "nothing": [None, float("nan")]},
        {"long": "é" * 5000, "tiny": 1e-7, "large": 1e22, "negative_zero": -0.0, "nested": {"k": "v"}},
    ],
)
def test_the_one_pass_over_fields_gives_what_the_three_separate_functions_give(fields: dict[str, object]) -> None:
    indexed, pairs, numbers = indexed_fields(fields)

    assert indexed == indexed_field_values(fields)
    assert pairs == ["fields." + pair for pair in field_pairs(fields)]
    assert numbers == field_numbers(fields)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2024, 3, 9, 23, 30, 0, 123_456, tzinfo=timezone(timedelta(hours=-2))), "2024-03-10T01:30:00.123456Z"),
        (datetime(2024, 3, 10, 1, 30, 1, tzinfo=UTC), "2024-03-10T01:30:01.000000Z"),
        (datetime(5, 1, 2, 3, 4, 5, 6), "0005-01-02T03:04:05.000006Z"),
        (
            datetime(2262, 4, 11, 23, 47, 16, 854_775, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            "2262-04-11T18:17:16.854775Z",
        ),
    ],
)
def test_an_instant_is_written_in_utc_with_microseconds_and_a_fixed_width(moment: datetime, text: str) -> None:
    assert utc_instant(moment) == text


def test_index_names_are_split_into_request_paths_opensearch_accepts() -> None:
    names = [f"p-t{number}-2024.03.{number % 28 + 1:02d}" for number in range(500)]
    groups = name_groups(names, max_bytes=200)
    assert [name for group in groups for name in group.split(",")] == names
    assert all(len(group) <= 200 for group in groups)
    for group, following in itertools.pairwise(groups):  # full: the next name would have gone over
        assert len(group) + 1 + len(following.split(",")[0]) > 200
    assert name_groups([]) == []
    assert name_groups(["a" * 300], max_bytes=200) == ["a" * 300]
    # The longest names at the default budget stay well under OpenSearch's 4 KiB request line.
    longest = [f"{'p' * 64}-{'t' * 40}-2024.{month:02d}@2024.12" for month in range(1, 13)] * 10
    assert all(len(quote(group, safe=",*")) <= MAX_NAMES_BYTES < 4096 - 200 for group in name_groups(longest))


def test_index_name_bytes_are_counted_as_quoted_in_the_path() -> None:
    monthly = "m-t-2024.03@2024.05"  # `@` is sent as %40
    assert len(quote(monthly, safe=",*")) == len(monthly) + 2
    groups = name_groups([monthly] * 10, max_bytes=(len(monthly) + 2) * 3 + 2)
    assert [group.count(",") + 1 for group in groups] == [3, 3, 3, 1]
