"""Replaying many tickets, and the ``slaengine replay`` command."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_clock import POLICY, created, reply, t, timeline

from slaengine.cli import main
from slaengine.clock import status_at
from slaengine.errors import EventError
from slaengine.replay import TicketStatus, read_events, replay
from slaengine.ticket import TicketEvent

AT = t("Mon 23 Nov 12:00")


def ticket(ticket_id: str, *steps: tuple) -> list[TicketEvent]:
    return [
        e.model_copy(update={"ticket_id": ticket_id, "event_id": f"{ticket_id}-{e.event_id}"})
        for e in timeline(*steps)
    ]


ONE = ticket("T1", created("Mon 23 Nov 09:00"), reply("Mon 23 Nov 10:00"))
TWO = ticket("T2", created("Mon 23 Nov 10:00", "urgent"), ("Mon 23 Nov 11:00", "resolved"))


def test_replay_gives_each_ticket_its_statuses_in_input_order() -> None:
    results = list(replay(ONE + TWO[::-1], AT, POLICY))
    assert results == [("T1", status_at(ONE, AT, POLICY)), ("T2", status_at(TWO, AT, POLICY))]


def test_replay_streams_without_reading_the_whole_input() -> None:
    def endless() -> Iterator[TicketEvent]:
        for n in itertools.count():
            yield from ticket(f"T{n}", created("Mon 23 Nov 09:00"))

    first = list(itertools.islice(replay(endless(), AT, POLICY), 3))
    assert [ticket_id for ticket_id, _ in first] == ["T0", "T1", "T2"]


def test_a_ticket_whose_events_come_back_later_is_an_error() -> None:
    interleaved = [ONE[0], TWO[0], ONE[1], TWO[1]]
    with pytest.raises(EventError, match="event T1-e2: ticket T1 has events after other"):
        list(replay(interleaved, AT, POLICY))


def test_a_window_allows_interleaved_tickets() -> None:
    interleaved = [ONE[0], TWO[0], ONE[1], TWO[1]]
    assert dict(replay(interleaved, AT, POLICY, window=2)) == dict(replay(ONE + TWO, AT, POLICY))


def test_a_ticket_created_after_the_instant_has_no_statuses() -> None:
    late = ticket("T3", created("Mon 23 Nov 13:00"))
    assert list(replay(late, AT, POLICY)) == [("T3", {})]


def test_read_events_names_the_line_of_a_bad_event() -> None:
    lines = [ONE[0].model_dump_json(), "", '{"ticket_id": "T1", "event_id": "x", "type": "y"}']
    stream = io.BytesIO("\n".join(lines).encode())
    with pytest.raises(EventError, match=r"events.jsonl:3: at: Field required"):
        list(read_events(stream, "events.jsonl"))


def test_read_events_refuses_a_naive_instant() -> None:
    line = '{"ticket_id": "T1", "event_id": "1", "at": "2026-11-23T09:00:00", "type": "created"}'
    with pytest.raises(EventError, match="events.jsonl:1: at: .*has no timezone"):
        list(read_events(io.BytesIO(line.encode()), "events.jsonl"))


# ------------------------------------------------------------------- the CLI

SHIPPED = Path(__file__).resolve().parent.parent / "rulesets"
EVENTS = [
    {
        "ticket_id": "INC-1",
        "event_id": "1",
        "at": "2026-11-23T10:00:00+08:00",
        "type": "created",
        "fields": {"contract": "CN-NORTHWIND-LOGISTICS-2026", "severity": "urgent"},
    },
    {
        "ticket_id": "INC-1",
        "event_id": "2",
        "at": "2026-11-23T10:10:00+08:00",
        "type": "agent_replied",
        "fields": {"public": True},
    },
    {
        "ticket_id": "INC-1",
        "event_id": "3",
        "at": "2026-11-23T11:30:00+08:00",
        "type": "status_changed",
        "fields": {"status": "pending_customer"},
    },
]


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in EVENTS), encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["replay", *args, "--rulesets", str(SHIPPED), "--at", "2026-11-23T12:00+08:00"])
    out, err = capsys.readouterr()
    return code, out, err


def test_replay_command_prints_a_table_of_each_metric(
    events_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, str(events_file))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == [
        "TICKET",
        "METRIC",
        "STATE",
        "CYCLE",
        "TARGET",
        "USED",
        "LEFT",
        "DUE",
        "NOTE",
    ]
    # Urgent on the 7x24 clock: answered in 10 of 15 minutes, resolution
    # paused after 1h30 of 6h.
    assert lines[1].split()[:7] == ["INC-1", "first_response", "met", "1", "15m", "67%", "0h05m"]
    assert lines[3].split() == [
        "INC-1",
        "resolution",
        "paused",
        "1",
        "6h",
        "25%",
        "4h30m",
        "2026-11-23T16:30+08:00",
        "paused",
    ]


def test_replay_command_prints_json_lines_with_json(
    events_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, str(events_file), "--json")
    [line] = out.splitlines()
    status = TicketStatus.model_validate_json(line)
    assert (code, status.ticket_id) == (0, "INC-1")
    assert status.metrics["resolution"].state == "paused"
    assert status.at == t("Mon 23 Nov 05:00")  # 12:00+08:00


def test_replay_command_reports_a_bad_line_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(EVENTS[0]) + "\nnot json\n", encoding="utf-8")
    code, _, err = run(capsys, str(path))
    assert code == 2
    assert f"{path}:2: not a JSON event" in err
