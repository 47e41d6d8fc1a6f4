"""The checks before a remediation is requested: none in a drill's channel, none from a button
tied to an incident whose diagnosis never suggested it. Each refuses with Conflict, changing
nothing."""

from __future__ import annotations

from bot.errors import Conflict
from bot.incidents import storage as incidents
from bot.incidents.schemas import INCIDENT_ID
from bot.models import Incident
from bot.remediation import storage as requests
from bot.store import Store, Tx


async def refuse_in_drill(
    store: Store, channel_id: str | None, incident_id: str | None, service: str
) -> None:
    """Every remediation writes: a drill's channel gets none, whoever asks (Conflict)."""
    if not channel_id and not incident_id:
        return
    async with store.transaction() as tx:
        incident = await incident_of(tx, channel_id, incident_id)
    if incident is not None and incident.drill:
        raise Conflict(
            f"Nothing requested: {incident.id} is a DRILL, and a drill never changes a real "
            # The service by name: a `<service>` placeholder is a link in Slack's mrkdwn.
            f"system. Its read-only checks still run: `/diagnose {service}`."
        )


async def refuse_untied(store: Store, incident_id: str, service: str, action: str) -> None:
    """A button that names an incident whose diagnosis never suggested this (a forged or
    edited value) requests nothing: it would add lines to that incident's timeline, and
    its resolution would close the request (Conflict)."""
    async with store.transaction() as tx:
        tied = await requests.suggested_for(tx, incident_id, service, action)
    if not tied:
        named = incident_id if INCIDENT_ID.match(incident_id) else "an incident"
        raise Conflict(
            f"Nothing requested: this button names {named}, but no diagnosis of"
            f" {service} recorded there suggested {action}. Use the buttons of that"
            " incident's own diagnosis, or `/remediate` in its war room."
        )


async def incident_of(tx: Tx, channel_id: str | None, incident_id: str | None) -> Incident | None:
    """The incident a request is raised for: the one named (an unknown name, as a forged
    button could carry, names none), else the one whose war room the channel is."""
    incident = await incidents.get(tx, incident_id) if incident_id else None
    if incident is None and channel_id:
        incident = await incidents.get_by_channel(tx, channel_id)
    return incident
