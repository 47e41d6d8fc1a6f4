"""De-duplication claims and kept queues: in process, or shared through Redis."""

from __future__ import annotations

from bot.coordination.base import Coordinator
from bot.coordination.local import LocalCoordinator


def create_coordinator(redis_url: str | None) -> Coordinator:
    if redis_url:
        from bot.coordination.redis import RedisCoordinator

        return RedisCoordinator(redis_url)
    return LocalCoordinator()


__all__ = ["Coordinator", "LocalCoordinator", "create_coordinator"]
