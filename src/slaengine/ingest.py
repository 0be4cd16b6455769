"""Group commit of posted events: one writer thread, one transaction per round.

Requests of the HTTP API hand their parsed events to an :class:`Ingestor`
and wait for the answer. Its single writer thread takes everything queued
since its last round and applies it with :meth:`SlaService.apply_many`: one
transaction and one commit (one WAL flush) for all of them, each request
still atomic on its own. Under light load a round holds one request and
nothing waits for a batch to fill; under heavy load the rounds grow and the
cost of a commit is shared. A single writer also means the service's clock
cache is never touched by two threads, and the event loop never blocks on
the database. The event loop's waiters of a round are woken by one callback
(:meth:`Ingestor.run`), not one cross-thread wake-up per request.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from slaengine.clock import MetricStatus

if TYPE_CHECKING:
    from slaengine.service import SlaService
    from slaengine.ticket import TicketEvent

#: Most requests applied in one transaction.
MAX_ROUND = 256

Statuses = dict[str, dict[str, MetricStatus]]


class _Job:
    """One request: its events and who waits for the answer.

    A thread waits on a concurrent ``Future``; a coroutine on an asyncio
    future of ``loop``, which only that loop's thread may settle.
    """

    __slots__ = ("service", "events", "future", "loop")

    def __init__(
        self,
        service: SlaService,
        events: Sequence[TicketEvent],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.service = service
        self.events = events
        self.loop = loop
        self.future: Future[Statuses] | asyncio.Future[Statuses] = (
            Future() if loop is None else loop.create_future()
        )


class Ingestor:
    """Applies submitted events on one writer thread, many requests per commit."""

    def __init__(self, max_round: int = MAX_ROUND) -> None:
        self.max_round = max_round
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self._closed = False

    def submit(self, service: SlaService, events: Sequence[TicketEvent]) -> Future[Statuses]:
        """Queue one request's events; the future gives its statuses or its error."""
        job = _Job(service, events)
        self._put(job)
        return job.future  # type: ignore[return-value]

    async def run(self, service: SlaService, events: Sequence[TicketEvent]) -> Statuses:
        """Apply one request's events from a coroutine; its statuses, or its error raised."""
        job = _Job(service, events, asyncio.get_running_loop())
        self._put(job)
        return await job.future  # type: ignore[misc]

    def _put(self, job: _Job) -> None:
        with self._start:
            if self._closed:
                raise RuntimeError("the ingestor is closed")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="slaengine-ingest", daemon=True
                )
                self._thread.start()
            self._queue.put(job)

    def close(self) -> None:
        """Finish what is queued and stop the writer thread."""
        with self._start:
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            job = self._queue.get()
            if job is None:
                return
            round_ = [job]
            while len(round_) < self.max_round:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                round_.append(more)
            self._apply(round_)

    @staticmethod
    def _apply(round_: list[_Job]) -> None:
        by_service: dict[int, list[_Job]] = {}
        for job in round_:
            by_service.setdefault(id(job.service), []).append(job)
        answers: list[tuple[_Job, Statuses | Exception]] = []
        for jobs in by_service.values():
            try:
                results = jobs[0].service.apply_many([job.events for job in jobs])
            except Exception as exc:  # keep the writer alive; every waiter hears why
                results = [exc] * len(jobs)
            answers += zip(jobs, results, strict=True)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Statuses | Exception]]] = {}
        for job, answer in answers:
            if job.loop is None:
                _settle([(job.future, answer)])
            else:
                by_loop.setdefault(job.loop, []).append((job.future, answer))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # the loop has closed: nobody waits any more
                continue


def _settle(answers: list[tuple[Any, Statuses | Exception]]) -> None:
    """Hand each waiter its statuses or its error (on the thread its future belongs to)."""
    for future, answer in answers:
        if future.cancelled():  # a coroutine that stopped waiting (client gone)
            continue
        if isinstance(answer, Exception):
            future.set_exception(answer)
        else:
            future.set_result(answer)
