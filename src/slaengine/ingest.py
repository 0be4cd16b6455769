"""Group commit of posted events: one writer thread, one transaction per round.

Requests of the HTTP API hand their parsed events to an :class:`Ingestor`
and wait for the answer. Its single writer thread takes everything queued
since its last round and applies it with :meth:`SlaService.apply_many`: one
transaction and one commit (one WAL flush) for all of them, each request
still atomic on its own. Under light load a round holds one request and
nothing waits for a batch to fill; under heavy load the rounds grow and the
cost of a commit is shared. A single writer also means the service's clock
cache is never touched by two threads, and the event loop never blocks on
the database.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING

from slaengine.clock import MetricStatus

if TYPE_CHECKING:
    from slaengine.service import SlaService
    from slaengine.ticket import TicketEvent

#: Most requests applied in one transaction.
MAX_ROUND = 256

Statuses = dict[str, dict[str, MetricStatus]]


class _Job:
    __slots__ = ("service", "events", "future")

    def __init__(self, service: SlaService, events: Sequence[TicketEvent]) -> None:
        self.service = service
        self.events = events
        self.future: Future[Statuses] = Future()


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
        with self._start:
            if self._closed:
                raise RuntimeError("the ingestor is closed")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="slaengine-ingest", daemon=True
                )
                self._thread.start()
            self._queue.put(job)
        return job.future

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
        for jobs in by_service.values():
            try:
                results = jobs[0].service.apply_many([job.events for job in jobs])
            except Exception as exc:  # keep the writer alive; every waiter hears why
                for job in jobs:
                    job.future.set_exception(exc)
                continue
            for job, result in zip(jobs, results, strict=True):
                if isinstance(result, Exception):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)
