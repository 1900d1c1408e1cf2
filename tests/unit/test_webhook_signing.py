"""Standard Webhooks signing: the spec's test vector, key derivation, verification and the payload."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from mintlog.domain.alerting import IncidentEvent
from mintlog.domain.webhooks import (
    delivery_id,
    generate_secret,
    incident_payload,
    sign,
    signature_headers,
    signing_key,
    verify,
)

# The test vector of the Standard Webhooks reference libraries (standard-webhooks/standard-webhooks).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_standard_webhooks_test_vector_is_reproduced() -> None:
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    assert verify(VECTOR_SECRET, headers, VECTOR_BODY)


def test_a_plain_secret_is_used_as_its_utf8_bytes() -> None:
    assert signing_key("mysecret") == b"mysecret"
    assert signing_key(VECTOR_SECRET) == base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")


def test_verification_fails_for_another_body_secret_or_a_stale_timestamp() -> None:
    headers = signature_headers("mysecret", "msg_1", 1_700_000_000, b"{}")
    assert verify("mysecret", headers, b"{}", now=1_700_000_100)
    assert not verify("mysecret", headers, b'{"a":1}')
    assert not verify("othersecret", headers, b"{}")
    assert not verify("mysecret", headers, b"{}", now=1_700_000_000 + 301)
    assert not verify("mysecret", {**headers, "webhook-timestamp": "1700000001"}, b"{}")


def test_any_of_several_signatures_may_match_during_a_rotation() -> None:
    headers = signature_headers("new", "msg_1", 1_700_000_000, b"{}")
    old = sign("old", "msg_1", 1_700_000_000, b"{}")
    rotated = {**headers, "Webhook-Signature": f"{old} {headers['webhook-signature']}"}
    del rotated["webhook-signature"]
    assert verify("old", rotated, b"{}")
    assert verify("new", rotated, b"{}")


def test_generated_secrets_are_whsec_and_decode_to_32_bytes() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(signing_key(secret)) == 32
    assert generate_secret() != secret


def test_the_delivery_id_is_stable_per_event_and_channel() -> None:
    assert delivery_id("evt_1", "chn_a") == delivery_id("evt_1", "chn_a")
    assert delivery_id("evt_1", "chn_a") != delivery_id("evt_1", "chn_b")
    assert delivery_id("evt_1", "chn_a").startswith("msg_")


def test_the_payload_has_type_timestamp_and_the_incident_event_with_its_alert() -> None:
    event = IncidentEvent(
        id="evt_1",
        type="incident.triggered",
        tenant_id="acme",
        incident_id="inc_1",
        title="High errors",
        severity="critical",
        status="triggered",
        occurred_at=datetime(2026, 11, 27, 3, 0, tzinfo=UTC),
        actor="system",
        notify=True,
        channel_ids=["chn_a"],
    )
    payload = json.loads(incident_payload(event))
    assert payload["type"] == "incident.triggered"
    assert payload["timestamp"] == "2026-11-27T03:00:00Z"
    assert payload["data"]["incident_id"] == "inc_1"
    assert payload["data"]["title"] == "High errors"
