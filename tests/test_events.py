"""The event log: readable JSON lines, gap-free sequence, fast filtered reads."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from agent import events
from agent.clock import ManualClock
from agent.errors import ConfigError
from agent.events import Event, read_events
from agent.store import EVENT_LOG, Store, StoreError


@pytest.fixture
def clock():
    return ManualClock(start=1_795_000_000.25)


@pytest.fixture
def store(tmp_path, clock):
    return Store(tmp_path / "state", clock=clock, actor="admin")


def test_each_event_is_one_readable_json_line(store, clock):
    with store.transaction(actor="cim:alice") as txn:
        txn.event("guest.create", "uuid-1", name="compass1", memory_mb=2048)
    clock.advance(1.5)
    with store.transaction() as txn:
        txn.event("guest.start", "uuid-1")
    lines = (store.root / EVENT_LOG).read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first == {"seq": 1, "time": "2026-11-18T11:06:40.250000Z", "actor": "cim:alice",
                     "kind": "guest.create", "subject": "uuid-1",
                     "detail": {"name": "compass1", "memory_mb": 2048}}
    assert lines[1].startswith('{"seq": 2, "time": "2026-11-18T11:06:41.750000Z"')
    a, b = store.events()
    assert (a.time, b.time) == (1_795_000_000.25, 1_795_000_001.75)
    assert b.actor == "admin"


def test_sequence_is_gap_free_and_rolled_back_events_take_no_number(store):
    with store.transaction() as txn:
        txn.event("a", "x")
        txn.event("b", "x")
    with pytest.raises(ValueError):
        with store.transaction() as txn:
            txn.event("lost", "x")
            raise ValueError("refused")
    with store.transaction() as txn:
        txn.event("c", "y")
    assert [(e.seq, e.kind) for e in store.events()] == [(1, "a"), (2, "b"), (3, "c")]
    assert [e.seq for e in txn.events] == [3]
    assert store.last_seq() == 3


def test_filters(store):
    with store.transaction() as txn:
        for i in range(30):
            txn.event("guest.modify" if i % 2 else "guest.start", f"g{i % 3}", i=i)
    assert [e.detail["i"] for e in store.events(since_seq=25)] == [25, 26, 27, 28, 29]
    assert [e.detail["i"] for e in store.events(subject="g1")] == list(range(1, 30, 3))
    assert [e.detail["i"] for e in store.events(since_seq=20, subject="g2")] == [20, 23, 26, 29]
    assert [e.detail["i"] for e in store.events(kind="guest.start", limit=3)] == [0, 2, 4]
    assert store.events(since_seq=30) == []
    assert store.events(since_seq=10_000) == []


def test_details_must_be_plain_json(store):
    with pytest.raises(TypeError, match="plain JSON"):
        with store.transaction() as txn:
            txn.event("x", "y", when=object())
    with pytest.raises(ValueError):
        with store.transaction() as txn:
            txn.event("", "y")
    assert store.events() == []


def test_the_log_cannot_be_written_or_deleted_directly(store):
    with store.transaction() as txn:
        txn.event("a", "x")
    for action in (lambda t: t.append(EVENT_LOG, b"{}\n"), lambda t: t.delete(EVENT_LOG)):
        with pytest.raises(StoreError):
            with store.transaction() as txn:
                action(txn)
    assert len(store.events()) == 1


def _write_log(path, count, rng_detail):
    with open(path, "wb") as f:
        for seq in range(1, count + 1):
            f.write(Event(seq, 1_700_000_000 + seq, "a", "k", f"s{seq % 7}",
                          {"pad": "x" * rng_detail(seq)}).to_line())


@settings(max_examples=25, deadline=None)
@given(count=st.integers(0, 400), since=st.integers(0, 420), pad=st.integers(0, 900))
def test_since_search_matches_a_linear_scan(tmp_path_factory, count, since, pad):
    path = tmp_path_factory.mktemp("log") / "events.log"
    _write_log(path, count, lambda seq: (seq * 7919 + pad) % (pad + 1))
    got = [e.seq for e in read_events(path, since_seq=since)]
    assert got == list(range(since + 1, count + 1))
    assert events.last_seq(path) == count
    by_subject = [e.seq for e in read_events(path, since_seq=since, subject=("s3", "s5"))]
    assert by_subject == [q for q in range(since + 1, count + 1) if q % 7 in (3, 5)]


def test_since_search_reads_a_small_part_of_a_big_log(tmp_path, monkeypatch):
    path = tmp_path / "events.log"
    _write_log(path, 20_000, lambda seq: 40)
    parsed = []
    real = Event.from_line.__func__

    def counting(cls, line, **kw):
        parsed.append(1)
        return real(cls, line, **kw)

    monkeypatch.setattr(Event, "from_line", classmethod(counting))
    got = read_events(path, since_seq=19_990)
    assert [e.seq for e in got] == list(range(19_991, 20_001))
    assert len(parsed) == 10        # only the wanted records are parsed in full


def test_last_seq_of_a_log_with_very_long_lines(tmp_path):
    path = tmp_path / "events.log"
    _write_log(path, 3, lambda seq: 200_000)
    assert events.last_seq(path) == 3
    assert events.last_seq(tmp_path / "missing.log") == 0


def test_unreadable_record_is_reported(tmp_path):
    path = tmp_path / "events.log"
    _write_log(path, 2, lambda seq: 0)
    with open(path, "ab") as f:
        f.write(b"not json\n")
    with pytest.raises(ConfigError, match="unreadable event record"):
        read_events(path)


def test_filters_take_several_values_and_match_exactly(store):
    with store.transaction() as txn:
        txn.event("guest.create", "g1", note='"subject": "g2"')     # a decoy in the detail
        txn.event("guest.modify", "g2")
        txn.event("guest.start", "g3", name="ü")
        txn.event("guest.modify", "g1")
    assert [e.seq for e in store.events(subject="g2")] == [2]
    assert [e.seq for e in store.events(subject={"g1", "g3"})] == [1, 3, 4]
    assert [e.seq for e in store.events(kind=("guest.create", "guest.modify"))] == [1, 2, 4]
    assert [e.seq for e in store.events(subject="g1", kind="guest.modify")] == [4]
    assert store.events(subject="ü") == [] and store.events(kind="guest") == []
