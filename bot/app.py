"""Build the Bolt AsyncApp: middleware, listeners, error handler."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import Services
from bot.slack import middleware

log = logging.getLogger(__name__)


def build_client(token: str, api_url: str) -> AsyncWebClient:
    """The Web API client; `api_url` is a setting (GovSlack, the test double)."""
    return AsyncWebClient(token=token, base_url=api_url, timeout=10)


def build_app(services: Services, *, client: AsyncWebClient, signing_secret: str) -> AsyncApp:
    """The Slack app with every command registered, ready for HTTP or Socket Mode."""
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )
    middleware.install(app, services.coordinator)

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

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.exception("unhandled error in a Slack listener", exc_info=error)

    return app
