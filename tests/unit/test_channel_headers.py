"""Webhook header values are write-only: every value is masked in answers, and the mask sent back in an update
keeps the stored value instead of overwriting it."""

from __future__ import annotations

import pytest

from mintlog.domain.channels import MASKED_HEADER_VALUE, header_problem, kept_header_values, masked_headers

# Fifteen credential-like header names; nine of them (X-Auth, X-Passwd, X-Credential, X-Session, ...) escaped
# the old masking, which guessed from the name.
CREDENTIAL_LIKE = [
    "Authorization",
    "X-API-Key",
    "X-Auth-Token",
    "Cookie",
    "X-Webhook-Secret",
    "X-Password",
    "X-Auth",
    "X-Passwd",
    "X-Credential",
    "X-Session",
    "X-Pwd",
    "X-Pass",
    "X-Access",
    "X-Jwt",
    "X-Sig",
]


@pytest.mark.parametrize("name", [*CREDENTIAL_LIKE, "X-Team", "Accept", "User-Agent", "x-lower-case"])
def test_every_header_value_is_masked_whatever_its_name(name: str) -> None:
    assert masked_headers({name: "s3cr3t-value"}) == {name: MASKED_HEADER_VALUE}


def test_the_mask_keeps_the_stored_value_and_anything_else_replaces_it() -> None:
    stored = {"Authorization": "Bearer real", "X-Team": "sre", "X-Gone": "old"}
    given = {"authorization": MASKED_HEADER_VALUE, "X-Team": "ops", "X-New": "fresh"}
    assert header_problem(given, stored) is None
    assert kept_header_values(given, stored) == {"authorization": "Bearer real", "X-Team": "ops", "X-New": "fresh"}


@pytest.mark.parametrize("stored", [None, {}, {"X-Other": "v"}])
def test_the_mask_for_a_header_with_no_stored_value_is_refused_naming_it(stored: dict[str, str] | None) -> None:
    problem = header_problem({"X-Team": "sre", "Authorization": MASKED_HEADER_VALUE}, stored)
    assert problem is not None
    assert problem[0] == "config.headers.Authorization"
    assert "masked" in problem[1]
