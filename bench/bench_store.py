"""Store costs with many guests against few, measured side by side in one run.

Prints ratios (large / small); a ratio near 1 means the cost does not grow with the store.
Run: python -m bench.bench_store
"""
from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

from agent.store import Store
from bench._common import alternating_medians

ROUNDS = 7          # alternating rounds; the median of each side is compared
PER_ROUND = 15      # operations per round


def _populate(root: Path, guests: int, events_per_guest: int) -> tuple[Store, list[str]]:
    store = Store(root, actor="bench")
    uuids = [str(uuid.UUID(int=i + 1)) for i in range(guests)]
    for start in range(0, guests, 250):
        with store.transaction() as txn:
            for n, u in enumerate(uuids[start:start + 250], start):
                txn.write(f"uuids/{u}/vmm_config.current", f"name=guest{n}\nmemory=2048\n" * 8)
                txn.append(f"uuids/{u}/log", "created\n")
                txn.symlink(f"guests/guest{n}", f"../uuids/{u}")
                for _ in range(events_per_guest):
                    txn.event("guest.modify", u, name=f"guest{n}", detail="x" * 60)
    return store, uuids


def _modify(store: Store, uuids: list[str], i: int) -> None:
    u = uuids[i % len(uuids)]
    with store.transaction() as txn:
        old = txn.read(f"uuids/{u}/vmm_config.current")
        txn.write(f"uuids/{u}/vmm_config.prev", old)
        txn.write(f"uuids/{u}/vmm_config.current", old)
        txn.append(f"uuids/{u}/log", "modified\n")
        txn.event("guest.modify", u, memory_mb=2048)


def _read_config(store: Store, uuids: list[str], i: int) -> None:
    with store.snapshot() as snap:
        snap.read(f"guests/guest{i % len(uuids)}/vmm_config.current")


def _recent_events(store: Store, uuids: list[str], i: int) -> None:
    store.events(since_seq=max(0, store.last_seq() - 10))


def _guest_history(store: Store, uuids: list[str], i: int) -> None:
    store.events(subject=uuids[i % len(uuids)])


def _open(store: Store, uuids: list[str], i: int) -> None:
    Store(store.root)


def _compare(name: str, op, small, large) -> None:
    counter = 0

    def per_op(side) -> float:
        nonlocal counter
        store, uuids = side
        t0 = time.perf_counter()
        for _ in range(PER_ROUND):
            op(store, uuids, counter)
            counter += 1
        return (time.perf_counter() - t0) / PER_ROUND

    s, l = alternating_medians(ROUNDS, lambda: per_op(small), lambda: per_op(large))
    print(f"  {name:<44} {s * 1e3:8.3f} ms  {l * 1e3:8.3f} ms  ratio {l / s:5.2f}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        small = _populate(Path(tmp) / "small", 10, 2)
        large = _populate(Path(tmp) / "large", 1000, 100)     # 100 000 events
        print(f"  {'operation (10 guests vs 1000 guests)':<44} {'10':>11}  {'1000':>11}")
        _compare("transaction: modify one guest + event", _modify, small, large)
        _compare("snapshot: read one config via guests/<name>", _read_config, small, large)
        _compare("events since last-10 (20 vs 100 000 events)", _recent_events, small, large)
        _compare("open the store", _open, small, large)
        # informative: a per-guest history scans the whole log, so it grows with the history
        # (not with the guest count); the byte pre-filter keeps it cheap per line
        _compare("events of one guest (scan, 20 vs 100 000)", _guest_history, small, large)


if __name__ == "__main__":
    main()
