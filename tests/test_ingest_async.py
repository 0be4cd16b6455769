"""The ingestor seen from an event loop: coroutines wait for their round without a thread each."""

from __future__ import annotations

import asyncio
import threading

import pytest

from slaengine.errors import EventError
from slaengine.ingest import Ingestor
from slaengine.service import SlaService
from slaengine.store import SqlStore
from slaengine.ticket import TicketEvent
from tests.test_ingest import START, requests


class Gate(SlaService):
    """A service whose rounds wait at a gate until the test opens it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.rounds: list[int] = []

    def apply_many(self, batches):
        self.entered.set()
        self.gate.wait(10)
        self.rounds.append(len(batches))
        return super().apply_many(batches)


@pytest.fixture
def service(shipped, tmp_path):
    service = Gate(shipped, store=SqlStore.open(f"sqlite:///{tmp_path / 'sla.db'}"))
    yield service
    service.store.engine.dispose()


def test_coroutines_get_their_own_answers_and_errors_from_one_round(service):
    ingest = Ingestor()
    stream = requests(seed=3, tickets=6, count=6)  # six tickets created
    orphan = TicketEvent(ticket_id="X", event_id="x1", type="agent_replied", at=START)

    async def main():
        first = asyncio.create_task(ingest.run(service, stream[0]))
        await asyncio.to_thread(service.entered.wait, 10)  # the writer holds the first
        rest = [asyncio.create_task(ingest.run(service, r)) for r in [*stream[1:], [orphan]]]
        await asyncio.sleep(0.05)  # every request queued behind the first round
        service.gate.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    results = asyncio.run(main())
    ingest.close()
    assert service.rounds == [1, 6]
    assert [list(r) for r in results[:-1]] == [[r[0].ticket_id] for r in stream]
    assert isinstance(results[-1], EventError) and "no created event" in str(results[-1])


def test_a_coroutine_that_stops_waiting_leaves_its_round_and_the_writer_working(service):
    ingest = Ingestor()
    stream = requests(seed=4, tickets=3, count=3)

    async def main():
        gone = asyncio.create_task(ingest.run(service, stream[0]))
        await asyncio.to_thread(service.entered.wait, 10)
        waiting = asyncio.create_task(ingest.run(service, stream[1]))
        await asyncio.sleep(0.05)
        gone.cancel()  # the client went away while its round ran
        service.gate.set()
        answer = await waiting
        return answer, await ingest.run(service, stream[2])

    answer, later = asyncio.run(main())
    ingest.close()
    assert list(answer) == [stream[1][0].ticket_id] and list(later) == [stream[2][0].ticket_id]
    # The abandoned request was still applied: its client may retry, which changes nothing.
    assert service.store.events(stream[0][0].ticket_id) == stream[0]
