"""One-click acknowledge/resolve: `/oncall/actions/{token}`, without an API key (the signed token is the
credential; the path is outside `/v1/`, where every route needs a key). docs/escalation.md is the reference.

Guarantees:
- `GET` never acts: it answers what the link would do (a tiny HTML page with one button when the client asks
  for HTML, else JSON), so link previews and mail scanners that fetch every URL change nothing;
- `POST` acts once: it acknowledges or resolves the incident named in the token, as the person (or channel) the
  link was sent to (`person:<id>` is the timeline's actor), and records the use; a second `POST` is a 410
  `link_used`, an expired link a 410 `link_expired`, a token not signed by this deployment a 404
  `link_not_found`, an incident that no longer exists (in the token's tenant) a 404 `incident_not_found`, an
  incident already past the action a 409 `invalid_transition` (that use counts: the link is spent);
- a token names its tenant and is signed, so it never reaches another tenant's incident; every use that acts
  is in the tenant's audit log.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath

from mintlog.domain.action_links import LinkClaims, read_token, token_digest
from mintlog.domain.alerting import IncidentStatus
from mintlog.domain.incidents import EntryDraft, Incident, check_transition, new_entry_id
from mintlog.domain.tenants import Principal
from mintlog.errors import Gone, NotFound
from mintlog.ports.bus import EventBus
from mintlog.ports.escalation import EscalationStore
from mintlog.ports.incidents import IncidentStore
from mintlog.roles.api.common.auditing import AuditTrail
from mintlog.roles.api.common.dependencies import Clock, Injected
from mintlog.roles.api.common.resource import Resource, operation
from mintlog.roles.api.incidents.incidents import publish_change
from mintlog.roles.kit.link_keys import LinkKeys

__all__ = ["ActionLinks", "LinkAnswer"]

_TARGET: dict[str, IncidentStatus] = {"acknowledge": "acknowledged", "resolve": "resolved"}


class LinkAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """What a link does (`GET`) or did (`POST`)."""

    action: str
    incident_id: str
    title: str
    status: IncidentStatus
    actor: str
    expires_at: datetime
    done: bool


def _wants_html(request: Request[Any, Any, Any]) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _page(answer: LinkAnswer, url: str) -> str:
    title = html.escape(answer.title)
    if answer.done:
        body = f"<p>Incident <b>{title}</b> is now {answer.status}.</p>"
    else:
        body = (
            f"<p>Incident <b>{title}</b> is {answer.status}.</p>"
            f'<form method="post" action="{html.escape(url)}"><button type="submit">'
            f"{html.escape(answer.action.capitalize())}</button></form>"
        )
    return f"<!doctype html><html><head><title>Mintlog: {title}</title></head><body>{body}</body></html>"


def _respond(request: Request[Any, Any, Any], answer: LinkAnswer) -> Response[Any]:
    if _wants_html(request):
        return Response(_page(answer, str(request.url)), media_type="text/html; charset=utf-8")
    return Response(msgspec.to_builtins(answer), media_type="application/json")


class ActionLinks(Resource):
    """`/oncall/actions/{token}`: the one-click links of escalation notifications."""

    path = "/oncall/actions"
    noun = "link"
    not_found_code = "link_not_found"

    @get(
        "/{token:str}",
        summary="What a one-click link does (never acts; no API key).",
        description="HTML with one button when the client accepts text/html, else JSON. See docs/escalation.md.",
        opt=operation(answer=LinkAnswer, answer_media_types=("application/json", "text/html"), errors=(404, 410)),
    )
    async def show(
        self,
        request: Request[Any, Any, Any],
        escalation: Injected[EscalationStore],
        incidents: Injected[IncidentStore],
        link_keys: Injected[LinkKeys],
        clock: Injected[Clock],
        token: FromPath[str],
    ) -> Response[Any]:
        claims, incident = await self._checked(token, link_keys, incidents, clock())
        return _respond(request, self._answer(claims, incident, done=False))

    @post(
        "/{token:str}",
        status_code=200,
        summary="Acknowledge or resolve by a one-click link (once; no API key).",
        opt=operation(answer=LinkAnswer, answer_media_types=("application/json", "text/html"), errors=(404, 409, 410)),
    )
    async def act(
        self,
        request: Request[Any, Any, Any],
        escalation: Injected[EscalationStore],
        incidents: Injected[IncidentStore],
        link_keys: Injected[LinkKeys],
        trail: Injected[AuditTrail],
        bus: Injected[EventBus],
        clock: Injected[Clock],
        token: FromPath[str],
    ) -> Response[Any]:
        now = clock()
        claims, incident = await self._checked(token, link_keys, incidents, now)
        target = _TARGET[claims.action]
        actor = Principal(
            tenant_id=claims.tenant_id, key_id="one-click-link", key_prefix=claims.subject, scopes=frozenset()
        )
        async with trail.record(
            actor, "incident.link_action", target_type="incident", tenant_id=claims.tenant_id, target_id=incident.id
        ) as note:
            if not await escalation.use_link(
                token_digest(token), tenant_id=claims.tenant_id, incident_id=incident.id, at=now
            ):
                raise Gone("this link was used already", code="link_used")
            check_transition(incident.id, incident.status, target)
            entry_id = new_entry_id()
            draft = EntryDraft(
                id=entry_id,
                source_id=entry_id,
                occurred_at=now,
                event_type="acknowledged" if target == "acknowledged" else "resolved",
                actor=claims.subject,
                content=f"{claims.action}d by a one-click link sent to {claims.subject}",
                data={"via": "link", "subject": claims.subject},
                notify=True,
            )
            applied = self.found(
                await incidents.change_status(claims.tenant_id, incident.id, target, draft), incident.id
            )
            note.detail = {"action": claims.action, "actor": claims.subject}
        await publish_change(bus, incidents, applied, now=clock())
        return _respond(request, self._answer(claims, applied.incident, done=True))

    async def _checked(
        self, token: str, link_keys: LinkKeys, incidents: IncidentStore, now: datetime
    ) -> tuple[LinkClaims, Incident]:
        claims = read_token(await link_keys.key(), token)
        if claims is None:
            raise self.not_found("(the token is not one of this deployment's links)")
        if claims.expired(now):
            raise Gone("this link expired; acknowledge over the API or from a newer notification", code="link_expired")
        incident = await incidents.get_incident(claims.tenant_id, claims.incident_id)
        if incident is None:
            raise NotFound(f"no incident {claims.incident_id!r}", code="incident_not_found")
        return claims, incident

    @staticmethod
    def _answer(claims: LinkClaims, incident: Incident, *, done: bool) -> LinkAnswer:
        return LinkAnswer(
            action=claims.action,
            incident_id=incident.id,
            title=incident.title,
            status=incident.status,
            actor=claims.subject,
            expires_at=datetime.fromtimestamp(claims.expires, UTC),
            done=done,
        )
