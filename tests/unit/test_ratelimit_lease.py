"""`Lease`: what one process may decide alone about a shared bucket, and the view it reports."""

from __future__ import annotations

import math

from mintlog.domain.ratelimit import Lease, lease_size


def lease(**fields: float) -> Lease:
    values = {
        "rate_per_second": 1.0,
        "burst": 100.0,
        "leased": 10.0,
        "shared_tokens": 50.0,
        "answered_at": 0.0,
        "valid_until": 1.0,
        "refused_cost": math.inf,
    } | fields
    return Lease(**values)


def test_lease_size_is_a_tenth_of_the_burst_in_whole_tokens_and_at_least_one() -> None:
    assert lease_size(1000, 0.1) == 100
    assert lease_size(5, 0.1) == 1
    assert lease_size(1, 0.1) == 1
    assert lease_size(1000, 0) == 0


def test_a_lease_pays_requests_until_it_runs_out_and_reports_the_local_view() -> None:
    held = lease()
    decisions = [held.spend(0.0, rate_per_second=1, burst=100, cost=1) for _ in range(11)]
    assert [d.allowed for d in decisions[:10] if d is not None] == [True] * 10
    assert [d.remaining for d in decisions[:10] if d is not None] == list(range(59, 49, -1))
    assert decisions[10] is None  # spent: ask the shared bucket
    assert held.leased == 0


def test_a_request_the_lease_cannot_pay_goes_to_the_shared_bucket() -> None:
    assert lease(leased=3).spend(0.0, rate_per_second=1, burst=100, cost=4) is None


def test_an_expired_lease_or_a_changed_limit_is_not_spent() -> None:
    assert lease().spend(1.0, rate_per_second=1, burst=100, cost=1) is None
    assert lease().spend(0.5, rate_per_second=2, burst=100, cost=1) is None
    assert lease().spend(0.5, rate_per_second=1, burst=200, cost=1) is None


def test_a_refusal_is_repeated_locally_until_the_bucket_would_have_refilled() -> None:
    refused = lease(leased=0, shared_tokens=0.5, refused_cost=1)
    decision = refused.spend(0.2, rate_per_second=1, burst=100, cost=1)
    assert decision is not None
    assert not decision.allowed
    assert math.isclose(decision.retry_after_seconds, 0.3)
    assert refused.spend(0.2, rate_per_second=1, burst=100, cost=0.5) is None  # a smaller cost may pass
    assert refused.spend(0.6, rate_per_second=1, burst=100, cost=1) is None  # refilled by now: ask
