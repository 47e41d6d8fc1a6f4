"""Build the Bolt AsyncApp: middleware, listeners, error handler."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import Services
from bot.slack import middleware
from bot.slack.auth import SlackAuth
from bot.slack.client import PacedWebClient, SessionRespond
from bot.slack.limits import SlackLimits
from bot.slack.pace import Pacer

log = logging.getLogger(__name__)


def build_client(
    token: str, api_url: str, *, pacer: Pacer | None = None, limits: SlackLimits | None = None
) -> AsyncWebClient:
    """The Web API client, paced to Slack's limits; `api_url` is a setting (GovSlack, the
    test double). One pacer per workspace: share it between every client of one token."""
    return PacedWebClient(token=token, base_url=api_url, timeout=10, pacer=pacer, limits=limits)


def _pace_listener_clients(app: AsyncApp, client: PacedWebClient) -> None:
    """Bolt hands each listener a new plain AsyncWebClient: give it a paced one instead,
    sharing the app client's pacer, so views.open or `say` keep Slack's pace too; and a
    `respond` on the same keep-alive connections."""

    @app.middleware
    async def paced_client(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:
        context["client"] = client.with_token(context.client.token)
        if context.response_url and client.session is not None:
            context["respond"] = SessionRespond(
                response_url=context.response_url, session=client.session
            )
        await next()


class _ClientTokenWins(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself, then warns that the client's
    token wins over it and that `authorize` ignores it: the same token, so nothing an operator
    should be told at every start ("token will be ignored" sends them looking for a fault)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("`token`" in message and ("unused" in message or "ignored" in message))


@contextlib.contextmanager
def _quiet_about_the_environment_token() -> Iterator[None]:
    bolt_log = logging.getLogger("slack_bolt.AsyncApp")
    quiet = _ClientTokenWins()
    bolt_log.addFilter(quiet)
    try:
        yield
    finally:
        bolt_log.removeFilter(quiet)


def _new_app(
    client: AsyncWebClient, authorize: Callable[..., Awaitable[AuthorizeResult]]
) -> AsyncApp:
    return AsyncApp(
        # Named, or Bolt names it after its caller's file by way of inspect.stack(), which
        # reads the source of every frame: 3-8 ms a bot start (tests start ~350 bots).
        name="chatops-bot",
        client=client,
        # One auth.test for every request, and commands still answered while it fails.
        authorize=authorize,
        # Checked once: bot.server verifies Slack's signature on the raw bytes before anything
        # parses them; Socket Mode's messages come over the app token's own connection.
        request_verification_enabled=False,
        process_before_response=False,
        # A click or form no listener takes reaches on_error below, to be answered.
        raise_error_for_unhandled_request=True,
    )


def build_app(
    services: Services,
    *,
    client: AsyncWebClient,
    auth: SlackAuth | None = None,
) -> AsyncApp:
    """The Slack app with every command registered, ready for HTTP or Socket Mode."""
    auth = auth or SlackAuth(client)

    # A plain function: Bolt passes arguments by the names it reads from the signature.
    async def authorize(
        enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> AuthorizeResult:
        return await auth.authorize(enterprise_id, team_id, user_id)

    with _quiet_about_the_environment_token():
        app = _new_app(client, authorize)
    if isinstance(client, PacedWebClient):
        _pace_listener_clients(app, client)
    middleware.install(app, services.coordinator, auth)

    from commands import diagnose, incident, oncall, remediate

    incident.register(app, services)
    oncall.register(app, services)
    diagnose.register(app, services)  # /diagnose, the Diagnose and suggestion buttons
    remediate.register(app, services)  # /remediate, Approve / Deny

    from commands import actions, events, views

    actions.register(app, services)  # buttons on incident cards
    views.register(app, services)  # modal submissions
    events.register(app, services)  # reactions that copy messages to the timeline

    from commands import home, report

    report.register(app, services)  # postmortem form, Close on action items
    home.register(app, services)  # the App Home tab

    from commands import alerts

    alerts.register(app, services)  # Silence on the alerts' thread messages

    from commands import unknown

    @app.error
    async def on_error(
        error: Exception,
        body: dict[str, Any],
        context: dict[str, Any],
        client: AsyncWebClient,
        respond: AsyncRespond | None,
    ) -> BoltResponse | None:
        if isinstance(error, BoltUnhandledRequestError):
            answer = unknown.unhandled(services, body, context, client, respond)
            if answer is None:
                log.warning("no listener for a %s request", str(body.get("type"))[:40])
            return answer
        log.exception("unhandled error in a Slack listener", exc_info=error)
        return None

    return app
