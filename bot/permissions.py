"""Who may do what: the policy's roles, with Slack user groups expanded.

Group membership comes from a Directory port (Slack's usergroups.users.list in production)
and is cached briefly: a page at 3 a.m. must not wait on a directory round trip per click.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Literal, Protocol

from bot.errors import NotifierError
from bot.models import Actor
from bot.policy import Policy

log = logging.getLogger(__name__)

Role = Literal["declarers", "responders", "approvers", "publishers"]

# The refusal of a publication to the status page (a command, or the update form's box).
NOT_A_PUBLISHER = "Only publishers may put incidents on the status page."


class Directory(Protocol):
    async def group_members(self, group_id: str) -> frozenset[str]:
        """User IDs in a user group; NotifierError when it cannot be read."""
        ...


class CachedDirectory:
    """Remembers group members for `ttl` seconds; serves stale members if Slack fails."""

    def __init__(self, directory: Directory, *, ttl: float = 300.0) -> None:
        self._directory = directory
        self._ttl = ttl
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    async def group_members(self, group_id: str) -> frozenset[str]:
        cached = self._cache.get(group_id)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        try:
            members = await self._directory.group_members(group_id)
        except NotifierError:
            if cached:
                log.warning("user group %s: using members cached before Slack failed", group_id)
                return cached[1]
            raise
        self._cache[group_id] = (time.monotonic() + self._ttl, members)
        return members


def is_group(target: str) -> bool:
    """Whether a policy target is a Slack user group (its members are read from Slack)."""
    return target.startswith("S")


class Permissions:
    def __init__(self, policy: Policy, directory: Directory) -> None:
        self.policy = policy
        self.directory = directory

    async def expand(self, targets: Iterable[str]) -> list[str]:
        """User IDs behind a list of users and user groups, in order, without repeats."""
        users: list[str] = []
        for target in targets:
            members = (
                sorted(await self.directory.group_members(target)) if is_group(target) else [target]
            )
            users.extend(member for member in members if member not in users)
        return users

    async def allows(self, actor: Actor, role: Role) -> bool:
        """True when `actor` holds `role`; an empty role list in the policy means everyone,
        except `approvers`, where it means nobody."""
        allowed: list[str] | None = getattr(self.policy.roles, role)
        if allowed is None:  # publishers left out: the responders
            allowed = self.policy.roles.responders
        return await self.listed(actor, allowed, empty_means_everyone=role != "approvers")

    async def listed(
        self, actor: Actor, allowed: Iterable[str], *, empty_means_everyone: bool
    ) -> bool:
        """True when `actor` is one of `allowed` (users and user groups). "Everyone" is
        everyone of the bot's own organisation: not an external user of a shared channel.
        NotifierError (retryable) when only a group Slack failed to list could allow them; a
        group Slack refuses for good (deleted) allows nobody."""
        allowed = list(allowed)
        if not allowed:
            return empty_means_everyone and not actor.external
        if actor.user_id in allowed:
            return True
        unanswered: NotifierError | None = None
        for target in allowed:
            if is_group(target):
                try:
                    if actor.user_id in await self.directory.group_members(target):
                        return True
                except NotifierError as exc:
                    if exc.retryable:  # Slack failing: whether they are in it is unknown
                        unanswered = unanswered or exc
                    log.warning("could not read user group %s: %s", target, exc)
        if unanswered is not None:
            # "Not allowed" would be a guess, and a wrong one for a member: say Slack failed.
            raise unanswered
        return False


class StaticDirectory:
    """A directory from a fixed mapping (the console and tests without Slack)."""

    def __init__(self, groups: dict[str, Iterable[str]] | None = None) -> None:
        self._groups = {k: frozenset(v) for k, v in (groups or {}).items()}

    async def group_members(self, group_id: str) -> frozenset[str]:
        return self._groups.get(group_id, frozenset())
