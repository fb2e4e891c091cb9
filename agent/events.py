"""The ordered event log: every change the store commits, one JSON line each, in order.

The file is `<state>/common/events.log`. Each line is one event::

    {"seq": 7, "time": "2026-11-27T04:40:00.123456Z", "actor": "root", "kind": "guest.create",
     "subject": "9a1c...", "detail": {"name": "compass1"}}

Sequence numbers start at 1 and are gap-free; the store assigns them under its exclusive lock
and appends the lines in the same atomic step as the change they record (see agent/store.py).
Because lines are sorted by `seq`, "everything since N" is found by a binary search over byte
offsets instead of parsing the whole log.
"""
from __future__ import annotations

import json
import mmap
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, BinaryIO, Iterable, Iterator

from agent.errors import ConfigError

# A line always begins with its sequence number, so probes need not parse the whole line.
_SEQ_PREFIX = re.compile(rb'^\{"seq": ?(\d+)[,}]')
# Below this many bytes a linear scan is cheaper than more probes.
_SCAN_WINDOW = 16 * 1024
_TAIL_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Event:
    seq: int
    time: float            # seconds since the epoch (from the store's Clock)
    actor: str             # who made the change (user name, "cim:<user>", "system", ...)
    kind: str              # what happened, dotted: "guest.create", "vswitch.delete", ...
    subject: str           # what it happened to (a guest UUID, a vswitch name, ...)
    detail: dict[str, Any] = field(default_factory=dict)

    def to_line(self) -> bytes:
        record = {
            "seq": self.seq,
            "time": format_time(self.time),
            "actor": self.actor,
            "kind": self.kind,
            "subject": self.subject,
            "detail": self.detail,
        }
        return (json.dumps(record, ensure_ascii=False, sort_keys=False) + "\n").encode("utf-8")

    @classmethod
    def from_line(cls, line: bytes, *, path: str = "events.log", lineno: int = 0) -> "Event":
        try:
            rec = json.loads(line)
            return cls(
                seq=int(rec["seq"]),
                time=parse_time(rec["time"]),
                actor=str(rec["actor"]),
                kind=str(rec["kind"]),
                subject=str(rec["subject"]),
                detail=dict(rec.get("detail") or {}),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(path, lineno, f"unreadable event record ({exc})") from None


def format_time(t: float) -> str:
    """UTC, ISO 8601 with microseconds: what a person reads and what sorts as text."""
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def check_detail(detail: dict[str, Any]) -> None:
    """Refuse details that would not survive the JSON round trip (a programming error)."""
    try:
        json.dumps(detail, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"event detail is not plain JSON data: {exc}") from None


def _line_seq(line: bytes) -> int | None:
    m = _SEQ_PREFIX.match(line)
    if m:
        return int(m.group(1))
    try:
        return int(json.loads(line)["seq"])
    except (ValueError, KeyError, TypeError):
        return None


def last_seq(path: str | os.PathLike) -> int:
    """The sequence number of the last complete line, reading only the file's tail."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return 0
    with f:
        size = f.seek(0, os.SEEK_END)
        chunk = _TAIL_CHUNK
        while True:
            start = max(0, size - chunk)
            f.seek(start)
            data = f.read(size - start)
            end = data.rfind(b"\n")
            if end < 0:
                if start == 0:
                    return 0
                chunk *= 2
                continue
            begin = data.rfind(b"\n", 0, end) + 1
            if begin == 0 and start > 0:
                chunk *= 2          # the last line is longer than the chunk
                continue
            seq = _line_seq(data[begin:end])
            if seq is None:
                raise ConfigError(os.fspath(path), 0, "last event record is unreadable")
            return seq


def _seq_at(f: BinaryIO, pos: int) -> int | None:
    """Sequence number of the first line starting at or after byte `pos` (None at the end)."""
    if pos > 0:
        f.seek(pos - 1)
        f.readline()            # finish the line that `pos - 1` is in
    else:
        f.seek(0)
    line = f.readline()
    if not line.endswith(b"\n"):
        return None
    return _line_seq(line)


def _needles(field_name: str, wanted: str | Iterable[str] | None) -> tuple[set[str], list[bytes]]:
    """The values asked for, and the byte strings a matching line must contain (a cheap test
    before the full parse; the parsed value is still compared exactly)."""
    if wanted is None:
        return set(), []
    values = {wanted} if isinstance(wanted, str) else set(wanted)
    return values, [f'"{field_name}": {json.dumps(v, ensure_ascii=False)}'.encode("utf-8")
                    for v in values]


def read_events(path: str | os.PathLike, since_seq: int = 0,
                subject: str | Iterable[str] | None = None,
                kind: str | Iterable[str] | None = None,
                limit: int | None = None) -> list[Event]:
    """Events with seq > since_seq, oldest first; `subject` and `kind` keep only events whose
    subject / kind is the one given (or one of several given)."""
    out: list[Event] = []
    subjects, subject_needles = _needles("subject", subject)
    kinds, kind_needles = _needles("kind", kind)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return out
    name = os.fspath(path)
    with f:
        size = f.seek(0, os.SEEK_END)
        lo, hi = 0, size
        # Invariant: the first line starting at or after `lo` has seq <= since_seq (or lo == 0),
        # so the first wanted line starts at or after `lo`.
        while since_seq > 0 and hi - lo > _SCAN_WINDOW:
            mid = (lo + hi) // 2
            seq = _seq_at(f, mid)
            if seq is not None and seq <= since_seq:
                lo = mid
            else:
                hi = mid
        if lo > 0:
            f.seek(lo - 1)
            f.readline()
        else:
            f.seek(0)
        start = f.tell()
        if subject is not None or kind is not None:
            lines = _matching_lines(f, start, size, subject_needles or kind_needles)
        else:
            lines = _all_lines(f, start)
        for offset, line in lines:
            seq = _line_seq(line)
            if seq is None:
                raise ConfigError(name, 0, f"unreadable event record at byte {offset}")
            if seq <= since_seq:
                continue
            if subject is not None and not any(n in line for n in subject_needles):
                continue
            if kind is not None and not any(n in line for n in kind_needles):
                continue
            event = Event.from_line(line, path=name)
            if subject is not None and event.subject not in subjects:
                continue
            if kind is not None and event.kind not in kinds:
                continue
            out.append(event)
            if limit is not None and len(out) >= limit:
                break
    return out


def _all_lines(f: BinaryIO, start: int) -> Iterator[tuple[int, bytes]]:
    offset = start
    for line in f:
        if not line.endswith(b"\n"):
            return              # a torn tail never exists after recovery; ignore defensively
        yield offset, line
        offset += len(line)


def _matching_lines(f: BinaryIO, start: int, size: int,
                    needles: list[bytes]) -> Iterator[tuple[int, bytes]]:
    """Only the lines containing one of `needles`, found by a byte search over the mapped
    file instead of splitting every line: a guest's history in a long log stays cheap."""
    if size <= start:
        return
    with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as mm:
        begins: set[int] = set()
        for needle in needles:
            pos = mm.find(needle, start)
            while pos != -1:
                begins.add(mm.rfind(b"\n", start, pos) + 1 or start)
                end = mm.find(b"\n", pos)
                if end == -1:
                    break
                pos = mm.find(needle, end + 1)
        for begin in sorted(begins):
            end = mm.find(b"\n", begin)
            if end == -1:
                return          # torn tail, as above
            yield begin, mm[begin:end + 1]
