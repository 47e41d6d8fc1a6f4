"""The status page's documents, built once and served from memory.

A hit reads no database: the rendered HTML, JSON and Atom are kept with the status version
they were built at (bot.status.storage.version, bumped in the transaction of every change to
a public fact). At most every `refresh_every` seconds one request reads that number (a single
row) and rebuilds only when it moved, or when the kept documents are `rebuild_every` old (the
90-day window moves with time). While the store cannot be read, the last documents are served;
with none built yet, the failure is the answer until the next check, so a burst of requests
while the database is down waits for one failed read, not one each, queued on the lock.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from bot.clock import Clock
from bot.errors import StoreError, StoreUnavailable
from bot.policy.status_page import StatusComponent
from bot.status import storage
from bot.status.facts import read_document
from bot.status.render import render_atom, render_html, render_json
from bot.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Document:
    """One rendered document and the validators a cache needs."""

    body: bytes
    content_type: str
    etag: str
    last_modified: str  # an HTTP date

    @classmethod
    def of(cls, text: str, content_type: str, changed: datetime) -> Document:
        body = text.encode("utf-8")
        digest = hashlib.sha256(body).hexdigest()[:32]
        return cls(body, content_type, f'"{digest}"', format_datetime(changed, usegmt=True))


@dataclass(frozen=True, slots=True)
class Built:
    version: int
    built_at: float  # time.monotonic()
    html: Document
    json: Document
    atom: Document


class StatusPage:
    """The three documents, kept current (see the module docstring)."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        components: Sequence[StatusComponent],
        refresh_every: float = 5.0,
        rebuild_every: float = 300.0,
        max_age: int = 30,
    ) -> None:
        self.store = store
        self.clock = clock
        self.components = list(components)
        self.refresh_every = refresh_every
        self.rebuild_every = rebuild_every
        self.max_age = max_age  # Cache-Control for browsers and proxies
        self._built: Built | None = None
        self._next_check = 0.0
        self._lock = asyncio.Lock()
        self._failed: str | None = None  # why the last check failed, with nothing built
        self._stale = False  # stale() since the check under way began: check again next time
        self.builds = 0  # how many times the documents were rendered (for tests and bench)
        self.checks = 0  # how many times the store was read (the same)

    async def current(self) -> Built:
        """The documents; StoreError only when none were ever built and the store fails."""
        if time.monotonic() < self._next_check:
            return self._kept()
        async with self._lock:  # one check at a time; the others wait and take its result
            if time.monotonic() < self._next_check:
                return self._kept()
            self.checks += 1
            self._stale = False
            try:
                self._built = await self._refresh(self._built)
                self._failed = None
            except StoreError as exc:
                if self._built is None:
                    self._failed = str(exc)
                    self._next_check = self._after_check()
                    raise
                log.warning("status page: serving the last documents, the store failed: %s", exc)
            self._next_check = self._after_check()
            return self._built

    def _after_check(self) -> float:
        # A stale() during the check may be about facts it read before they changed.
        return 0.0 if self._stale else time.monotonic() + self.refresh_every

    def stale(self) -> None:
        """Read the version at the next request, not at the next check: this process has just
        withdrawn something from the page (the others see it at their next check)."""
        self._next_check = 0.0
        self._stale = True

    def _kept(self) -> Built:
        if self._built is None:
            raise StoreUnavailable(f"the status page was never built: {self._failed}")
        return self._built

    async def _refresh(self, built: Built | None) -> Built:
        async with self.store.transaction() as tx:
            version = await storage.version(tx)
            fresh = built is not None and time.monotonic() - built.built_at < self.rebuild_every
            if built is not None and built.version == version and fresh:
                return built
            now = self.clock.now()
            doc = await read_document(tx, self.components, now)
        self.builds += 1
        changed = doc.updated_at or now
        return Built(
            version=version,
            built_at=time.monotonic(),
            html=Document.of(render_html(doc), "text/html; charset=utf-8", changed),
            json=Document.of(render_json(doc), "application/json; charset=utf-8", changed),
            atom=Document.of(
                render_atom(doc, epoch=now), "application/atom+xml; charset=utf-8", changed
            ),
        )
