"""ItemMemory is queried by service threads while the processing thread observes."""

import sys
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from spatial_memory_ros.core.config import MemoryConfig
from spatial_memory_ros.core.item_memory import ItemMemory
from spatial_memory_ros.core.store import MemoryStore
from spatial_memory_ros.core.types import ItemObservation


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """The interpreter hands the GIL between threads as often as it can: at the default 5 ms a reader seldom
    runs inside the few lines where an observe has appended a place and not yet pruned one, and the test
    passed without the memory's lock."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


@pytest.mark.usefixtures("fast_switching")
def test_concurrent_observe_and_locate(tmp_path) -> None:
    memory = ItemMemory(MemoryConfig(), MemoryStore(tmp_path / "m.db"))
    errors: list[BaseException] = []
    reads = [0, 0]  # each reader's list_all calls begun while the writer was still writing
    done = threading.Event()

    def writer() -> None:
        try:
            rng = np.random.default_rng(0)
            # Enough rounds that a lockless memory was caught every time (20 of 20 runs at 1,500); the lock
            # makes them take a second or two, and a reader's error ends them early.
            for i in range(2000):
                if errors:
                    break
                # many places so that places are appended and pruned while readers iterate over them
                pos = np.array([rng.uniform(0, 10), rng.uniform(0, 10), 0.0])
                memory.observe([ItemObservation(f"item{i % 3}", pos, float(i))])
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised in the main thread
            errors.append(exc)
        finally:
            done.set()  # else the readers would spin until the join's timeout

    def reader(k: int) -> None:
        try:
            while not done.is_set():
                reads[k] += 1
                for answer in memory.list_all():
                    assert len(answer.alternatives) < MemoryConfig().max_places_per_item
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[0]
    assert all(n > 0 for n in reads), reads  # both readers ran against the writer: the test saw concurrency
    assert memory.items() == ["item0", "item1", "item2"]
    memory.close()
