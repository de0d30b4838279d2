"""ItemMemory is queried by service threads while the processing thread observes."""

import threading

import numpy as np

from spatial_memory_ros.core.config import MemoryConfig
from spatial_memory_ros.core.item_memory import ItemMemory
from spatial_memory_ros.core.store import MemoryStore
from spatial_memory_ros.core.types import ItemObservation


def test_concurrent_observe_and_locate(tmp_path) -> None:
    memory = ItemMemory(MemoryConfig(), MemoryStore(tmp_path / "m.db"))
    errors: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:
        rng = np.random.default_rng(0)
        for i in range(400):
            # many places so that places are appended and pruned while readers iterate over them
            pos = np.array([rng.uniform(0, 10), rng.uniform(0, 10), 0.0])
            memory.observe([ItemObservation(f"item{i % 3}", pos, float(i))])
        done.set()

    def reader() -> None:
        try:
            while not done.is_set():
                for answer in memory.list_all():
                    assert len(answer.alternatives) < MemoryConfig().max_places_per_item
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[0]
    assert memory.items() == ["item0", "item1", "item2"]
    memory.close()
