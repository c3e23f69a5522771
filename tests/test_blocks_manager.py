"""The per-executor BlockManager with a real RDD subclass, driven from real threads
where concurrency is the point. Every test ends with ``validate_state``."""

from __future__ import annotations

import gc
import itertools
import os
import random
import threading
import time

import msgpack
import pytest

from sparklet.actors import SparkletInternalError
from sparklet.rdd._base import Partition, RDDBase, TaskContext
from sparklet.rdd._storage import StorageLevel
from sparklet.runtime._block_master import BlockManagerMasterCore
from sparklet.runtime._blocks import BlockManager, BlockState, BlockStatus, rdd_block_id
from sparklet.runtime._stores import deserialize_values, estimate_size, serialize_values

pytestmark = pytest.mark.timeout(30)

L = StorageLevel


class FakeContext:
    defaultParallelism = 2

    def __init__(self) -> None:
        self._ids = itertools.count()

    def _new_rdd_id(self) -> int:
        return next(self._ids)

    def _new_shuffle_id(self) -> int:
        return next(self._ids)


class ListRDD(RDDBase):
    """Partition i holds ``data[i]``; counts computations per partition. ``gate``, if
    set, is awaited inside compute (to hold a computation in flight)."""

    def __init__(self, ctx, data: list[list], level: StorageLevel = L.MEMORY_ONLY) -> None:
        super().__init__(ctx)
        self.data = data
        self._storage_level = level
        self.computed: list[int] = []
        self.gate: threading.Event | None = None
        self.fail_next = False

    def _get_partitions(self) -> list[Partition]:
        return [Partition(i) for i in range(len(self.data))]

    def compute(self, split, context):
        self.computed.append(split.index)
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.fail_next:
            self.fail_next = False
            yield self.data[split.index][0]
            raise RuntimeError("boom")
        yield from self.data[split.index]


class Harness:
    def __init__(self, tmp_path, memory_bytes: int = 10**6, name: str = "e1") -> None:
        self.ctx = FakeContext()
        self.reports: list[BlockStatus] = []
        self.replicas: list[tuple[str, bytes, StorageLevel]] = []
        self.directory = tmp_path / name
        self.bm = BlockManager(name, memory_bytes=memory_bytes, directory=str(self.directory),
                               on_block_status=self.reports.append,
                               replicate=lambda b, d, lvl: self.replicas.append((b, d, lvl)))

    def rdd(self, data, level=L.MEMORY_ONLY) -> ListRDD:
        return ListRDD(self.ctx, data, level)

    def read(self, rdd: ListRDD, index: int) -> list:
        context = TaskContext(0, 0, index, 0, 0, env=self.bm)
        return list(rdd.iterator(rdd.partitions[index], context))

    def storage(self) -> dict[str, str]:
        return {s.block_id: s.storage for s in self.bm.statuses()}


@pytest.fixture
def h(tmp_path):
    harness = Harness(tmp_path)
    yield harness
    harness.bm.validate_state()
    harness.bm.close()
    assert not harness.directory.exists()


def blob(n: int) -> list:
    """Records that pickle to a little over ``n`` bytes."""
    return [b"x" * n]


SIZE = len(serialize_values(blob(1000)))


@pytest.mark.parametrize("level, where", [
    (L.MEMORY_ONLY, "memory"), (L.MEMORY_AND_DISK, "memory"), (L.DISK_ONLY, "disk"),
    (L.MEMORY_AND_DISK_DESER, "memory"), (L.OFF_HEAP, "memory"),
])
def test_compute_once_then_hits(h, level, where):
    rdd = h.rdd([[1, 2], [3]], level)
    assert h.read(rdd, 0) == [1, 2] and h.read(rdd, 0) == [1, 2] and h.read(rdd, 1) == [3]
    assert rdd.computed == [0, 1]
    stats = h.bm.statistics()
    assert (stats.hits, stats.misses) == (1, 2)
    assert h.storage() == {"rdd_0_0": where, "rdd_0_1": where}
    assert [(s.block_id, s.storage) for s in h.reports] == [("rdd_0_0", where), ("rdd_0_1", where)]
    assert h.replicas == []
    h.bm.validate_state()


def test_serialized_and_deserialized_memory(h):
    records = [{"n": i} for i in range(5)]
    ser, deser = h.rdd([records], L.MEMORY_ONLY), h.rdd([records], L.MEMORY_AND_DISK_DESER)
    h.read(ser, 0)
    h.read(deser, 0)
    assert h.reports[0] == BlockStatus("rdd_0_0", "e1", "memory", len(serialize_values(records)), 0)
    assert h.reports[1] == BlockStatus("rdd_1_0", "e1", "memory", estimate_size(records), 0)
    context = TaskContext(0, 0, 0, 0, 0, env=h.bm)
    cached = list(deser.iterator(deser.partitions[0], context))
    assert cached == records and cached[0] is list(deser.iterator(deser.partitions[0], context))[0]  # the very objects
    copied = list(ser.iterator(ser.partitions[0], context))
    assert copied == records and copied[0] is not list(ser.iterator(ser.partitions[0], context))[0]
    assert h.bm.get_values("rdd_0_0") == records == h.bm.get_values("rdd_1_0")
    assert deserialize_values(h.bm.get_bytes("rdd_1_0")) == records
    assert h.bm.get_bytes("rdd_9_9") is None and h.bm.get_values("rdd_9_9") is None


def test_memory_and_disk_spills_evicted_blocks_and_still_serves_them(tmp_path):
    h = Harness(tmp_path, memory_bytes=2 * SIZE + 10)
    rdd = h.rdd([blob(1000) for _ in range(4)], L.MEMORY_AND_DISK)
    for i in range(4):
        h.read(rdd, i)
        h.bm.validate_state()
    assert h.storage() == {"rdd_0_0": "disk", "rdd_0_1": "disk", "rdd_0_2": "memory", "rdd_0_3": "memory"}
    assert [h.read(rdd, i) for i in range(4)] == [blob(1000)] * 4
    assert rdd.computed == [0, 1, 2, 3]
    # the new block is in memory before its victim reaches the disk (the victim still
    # serves reads meanwhile), and the reports say so in that order
    assert [(s.block_id, s.storage) for s in h.reports] == [
        ("rdd_0_0", "memory"), ("rdd_0_1", "memory"), ("rdd_0_2", "memory"), ("rdd_0_0", "disk"),
        ("rdd_0_3", "memory"), ("rdd_0_1", "disk")]
    assert h.reports[3].disk_size == SIZE and h.reports[3].memory_size == 0
    stats = h.bm.statistics()
    assert (stats.dropped_to_disk, stats.lost, stats.blocks_on_disk, stats.blocks_in_memory) == (2, 0, 2, 2)
    assert sorted(os.listdir(h.directory)) == ["rdd_0_0", "rdd_0_1"]
    h.bm.close()


def test_memory_only_evicted_block_is_recomputed(tmp_path):
    h = Harness(tmp_path, memory_bytes=SIZE + 10)
    rdd = h.rdd([blob(1000), blob(1000)], L.MEMORY_ONLY)
    h.read(rdd, 0)
    h.read(rdd, 1)  # evicts partition 0
    assert [(s.block_id, s.storage) for s in h.reports] == [
        ("rdd_0_0", "memory"), ("rdd_0_0", "none"), ("rdd_0_1", "memory")]
    assert h.read(rdd, 0) == blob(1000)
    assert rdd.computed == [0, 1, 0]
    assert h.bm.statistics().lost == 2
    h.bm.validate_state()
    h.bm.close()


def test_block_larger_than_memory_is_not_stored_or_goes_to_disk(tmp_path):
    h = Harness(tmp_path, memory_bytes=100)
    memory_only = h.rdd([blob(1000)], L.MEMORY_ONLY)
    h.read(memory_only, 0)
    h.read(memory_only, 0)
    assert memory_only.computed == [0, 0] and h.reports == [] and not h.bm.contains("rdd_0_0")
    spilling = h.rdd([blob(1000)], L.MEMORY_AND_DISK)
    h.read(spilling, 0)
    h.read(spilling, 0)
    assert spilling.computed == [0] and h.storage() == {"rdd_1_0": "disk"}
    assert h.bm.statistics().memory.refused == 3
    h.bm.close()


@pytest.mark.parametrize("level", [L.MEMORY_ONLY_2, L.MEMORY_AND_DISK_2, L.DISK_ONLY_2])
def test_replication_callback_gets_the_bytes(h, tmp_path, level):
    rdd = h.rdd([[1, "two", 3.0]], level)
    h.read(rdd, 0)
    h.read(rdd, 0)  # a hit does not replicate again
    [(block_id, data, sent_level)] = h.replicas
    assert block_id == "rdd_0_0" and sent_level == level and deserialize_values(data) == [1, "two", 3.0]
    assert h.bm.statistics().replicated == 1
    # the peer stores the replica and does not replicate further
    peer = Harness(tmp_path, name="e2")
    assert peer.bm.put_bytes(block_id, data, level)
    assert not peer.bm.put_bytes(block_id, data, level)  # already there
    assert peer.replicas == [] and peer.bm.get_values(block_id) == [1, "two", 3.0]
    assert peer.bm.get_bytes(block_id) == data
    assert [(s.executor_id, s.storage) for s in peer.reports] == [("e2", "disk" if not level.useMemory else "memory")]
    peer.bm.validate_state()
    peer.bm.close()


def test_put_bytes_deserialized_and_bad_arguments(h):
    data = serialize_values([1, 2])
    assert h.bm.put_bytes("rdd_5_0", data, L.MEMORY_AND_DISK_DESER)
    assert h.bm.get_values("rdd_5_0") == [1, 2]
    assert h.reports[-1].memory_size == estimate_size([1, 2])
    with pytest.raises(ValueError, match="level"):
        h.bm.put_bytes("rdd_5_1", data, L.NONE)
    with pytest.raises(ValueError, match="not a block id"):
        h.bm.put_bytes("../x", data, L.MEMORY_ONLY)


def test_status_reported_for_every_change(tmp_path):
    h = Harness(tmp_path, memory_bytes=SIZE + 10)
    mad = h.rdd([blob(1000), blob(1000)], L.MEMORY_AND_DISK)
    disk = h.rdd([[1]], L.DISK_ONLY)
    h.read(mad, 0)
    h.read(mad, 1)
    h.read(disk, 0)
    assert h.bm.remove_block("rdd_0_0") and not h.bm.remove_block("rdd_0_0")
    assert h.bm.remove_rdd(0) == 1 and h.bm.remove_rdd(1) == 1 and h.bm.remove_rdd(7) == 0
    assert [(s.block_id, s.storage) for s in h.reports] == [
        ("rdd_0_0", "memory"), ("rdd_0_1", "memory"), ("rdd_0_0", "disk"), ("rdd_1_0", "disk"),
        ("rdd_0_0", "none"), ("rdd_0_1", "none"), ("rdd_1_0", "none")]
    assert os.listdir(h.directory) == [] and h.bm.statuses() == []
    # replayed into the driver's core, the reports describe this executor exactly
    master = BlockManagerMasterCore()
    master.register_executor("e1", "host", 0)
    for status in h.reports:
        master.update_block(status)
        master.validate_state()
    assert master.block_id_to_locations == {}
    h.bm.validate_state()
    h.bm.close()


def test_concurrent_get_or_compute_computes_once(h):
    rdd = h.rdd([list(range(100))], L.MEMORY_AND_DISK_DESER)
    rdd.gate = threading.Event()
    results: dict[str, list] = {}

    def task(name: str) -> None:
        results[name] = h.read(rdd, 0)

    threads = [threading.Thread(target=task, args=(f"t{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while not (rdd.computed and h.bm.block_id_to_lock.get("rdd_0_0") and h.bm.block_id_to_lock["rdd_0_0"].users == 2):
        assert time.monotonic() < deadline, "second task never waited for the block"
        time.sleep(0.001)
    rdd.gate.set()
    for t in threads:
        t.join(10)
    assert results == {"t0": list(range(100)), "t1": list(range(100))}
    assert rdd.computed == [0]
    assert h.bm.block_id_to_lock == {}
    stats = h.bm.statistics()
    assert (stats.misses, stats.hits) == (1, 1)


def test_many_threads_many_blocks(tmp_path):
    h = Harness(tmp_path, memory_bytes=3 * SIZE)
    rdds = [h.rdd([blob(1000) for _ in range(4)], random.choice([L.MEMORY_ONLY, L.MEMORY_AND_DISK, L.MEMORY_AND_DISK_DESER]))
            for _ in range(3)]
    errors = []

    def task(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(40):
                rdd = rng.choice(rdds)
                assert h.read(rdd, rng.randrange(4)) == blob(1000)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=task, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert errors == []
    h.bm.validate_state()
    assert h.bm.block_id_to_lock == {} and h.bm.statistics().memory.pinned == 0
    master = BlockManagerMasterCore()
    master.register_executor("e1", "host", 3 * SIZE)
    for status in h.reports:
        master.update_block(status)
    assert {b: master.block_id_to_locations[b]["e1"] for b in master.block_id_to_locations} == \
        {s.block_id: s for s in h.bm.statuses()}
    h.bm.close()


def test_block_being_read_is_pinned_and_not_evicted(tmp_path):
    records = list(range(50))
    size = estimate_size(records)
    h = Harness(tmp_path, memory_bytes=size + 10)
    first, second = h.rdd([records], L.MEMORY_AND_DISK_DESER), h.rdd([records], L.MEMORY_AND_DISK_DESER)
    h.read(first, 0)
    reader = first.iterator(first.partitions[0], TaskContext(0, 0, 0, 0, 0, env=h.bm))
    assert next(reader) == 0
    assert h.bm.statistics().memory.pinned == 1
    h.read(second, 0)  # cannot evict the pinned block: goes to disk
    assert h.storage() == {"rdd_0_0": "memory", "rdd_1_0": "disk"}
    assert list(reader) == records[1:]
    assert h.bm.statistics().memory.pinned == 0
    abandoned = first.iterator(first.partitions[0], TaskContext(0, 0, 0, 0, 0, env=h.bm))
    assert h.bm.statistics().memory.pinned == 1
    del abandoned
    gc.collect()
    assert h.bm.statistics().memory.pinned == 0
    h.bm.validate_state()
    h.bm.close()


class Slow:
    """Pickling it waits for ``gate``: holds a block in the ``dropping`` state."""

    gate = threading.Event()
    started = threading.Event()

    def __reduce__(self):
        Slow.started.set()
        assert Slow.gate.wait(10)
        return (Slow, ())


def test_block_being_dropped_to_disk_is_still_served(tmp_path):
    Slow.gate.clear()
    Slow.started.clear()
    old = [Slow(), 1]
    h = Harness(tmp_path, memory_bytes=estimate_size(old) + 10)
    first, second = h.rdd([old], L.MEMORY_AND_DISK_DESER), h.rdd([[b"y" * 50]], L.MEMORY_AND_DISK_DESER)
    h.read(first, 0)
    thread = threading.Thread(target=h.read, args=(second, 0))
    thread.start()
    assert Slow.started.wait(10)
    assert h.bm.block_id_to_info["rdd_0_0"].machine.state is BlockState.DROPPING
    h.bm.validate_state()
    assert h.bm.get_values("rdd_0_0") == old and h.read(first, 0) == old  # no recompute
    assert h.bm.block_status("rdd_0_0").storage == "memory"
    Slow.gate.set()
    thread.join(10)
    assert first.computed == [0] and h.storage() == {"rdd_0_0": "disk", "rdd_1_0": "memory"}
    h.bm.validate_state()
    h.bm.close()


def test_removed_while_dropping_leaves_no_file(tmp_path):
    Slow.gate.clear()
    Slow.started.clear()
    old = [Slow()]
    h = Harness(tmp_path, memory_bytes=estimate_size(old) + 10)
    first, second = h.rdd([old], L.MEMORY_AND_DISK_DESER), h.rdd([[b"y" * 50]], L.MEMORY_AND_DISK_DESER)
    h.read(first, 0)
    thread = threading.Thread(target=h.read, args=(second, 0))
    thread.start()
    assert Slow.started.wait(10)
    assert h.bm.remove_block("rdd_0_0")
    Slow.gate.set()
    thread.join(10)
    assert h.storage() == {"rdd_1_0": "memory"} and os.listdir(h.directory) == []
    assert [(s.block_id, s.storage) for s in h.reports][-1] == ("rdd_0_0", "none")
    h.bm.validate_state()
    h.bm.close()


def test_unpicklable_block_dropped_from_memory_is_lost(tmp_path):
    records, other = [threading.Lock(), b"." * 100], [b"z" * 100]
    h = Harness(tmp_path, memory_bytes=max(estimate_size(records), estimate_size(other)) + 10)
    h.read(h.rdd([records], L.MEMORY_AND_DISK_DESER), 0)
    h.read(h.rdd([other], L.MEMORY_AND_DISK_DESER), 0)
    assert h.storage() == {"rdd_1_0": "memory"}
    assert [(s.block_id, s.storage) for s in h.reports] == [
        ("rdd_0_0", "memory"), ("rdd_1_0", "memory"), ("rdd_0_0", "none")]
    assert h.bm.statistics().lost == 1
    h.bm.validate_state()
    h.bm.close()


def test_failed_computation_stores_nothing_and_next_task_recomputes(h):
    rdd = h.rdd([[1, 2]], L.MEMORY_ONLY)
    rdd.fail_next = True
    with pytest.raises(RuntimeError, match="boom"):
        h.read(rdd, 0)
    assert not h.bm.contains("rdd_0_0") and h.bm.block_id_to_lock == {} and h.reports == []
    assert h.read(rdd, 0) == [1, 2] and rdd.computed == [0, 0]


def test_checkpointed_rdd_is_read_from_its_checkpoint(h):
    rdd = h.rdd([[1, 2]], L.MEMORY_ONLY)
    checkpoint = h.rdd([["from", "checkpoint"]], L.NONE)
    rdd._checkpointed = checkpoint
    assert h.read(rdd, 0) == ["from", "checkpoint"] and h.read(rdd, 0) == ["from", "checkpoint"]
    assert rdd.computed == [] and checkpoint.computed == [0]


def test_close_drops_everything_and_later_work_is_not_stored(h):
    h.read(h.rdd([[1]], L.DISK_ONLY), 0)
    h.read(h.rdd([[2]], L.MEMORY_ONLY), 0)
    h.bm.close()
    h.bm.close()
    assert not h.directory.exists() and h.bm.statuses() == []
    late = h.rdd([[3]], L.MEMORY_AND_DISK)
    assert h.read(late, 0) == [3] and not h.bm.contains("rdd_2_0")
    assert not h.bm.put_bytes("rdd_9_0", serialize_values([1]), L.DISK_ONLY)
    assert len(h.reports) == 2


def test_random_operations_keep_state_valid(tmp_path):
    rng = random.Random(1234)
    h = Harness(tmp_path, memory_bytes=3 * SIZE)
    levels = [L.MEMORY_ONLY, L.MEMORY_AND_DISK, L.DISK_ONLY, L.MEMORY_AND_DISK_DESER, L.MEMORY_ONLY_2]
    rdds = [h.rdd([blob(rng.choice([10, 500, 1000, 2000])) for _ in range(4)], rng.choice(levels)) for _ in range(4)]
    master = BlockManagerMasterCore()
    master.register_executor("e1", "host", 3 * SIZE)
    for _ in range(300):
        action = rng.random()
        rdd = rng.choice(rdds)
        if action < 0.7:
            index = rng.randrange(4)
            assert h.read(rdd, index) == rdd.data[index]
        elif action < 0.85:
            h.bm.remove_block(rdd_block_id(rdd.id, rng.randrange(4)))
        elif action < 0.95:
            h.bm.remove_rdd(rdd.id)
        else:
            block_id = rdd_block_id(rdd.id, rng.randrange(4))
            h.bm.put_bytes(block_id, serialize_values(rdd.data[int(block_id.rsplit("_", 1)[1])]), rdd._storage_level)
        h.bm.validate_state()
        for status in h.reports:
            master.update_block(status)
        h.reports.clear()
        master.validate_state()
        assert {b: locs["e1"] for b, locs in master.block_id_to_locations.items()} == \
            {s.block_id: s for s in h.bm.statuses()}
    stats = h.bm.statistics()
    assert stats.memory.used <= 3 * SIZE and stats.memory.pinned == 0
    h.bm.close()


def test_validate_state_catches_a_broken_table(h):
    h.read(h.rdd([[1]], L.MEMORY_ONLY), 0)
    h.bm._memory.remove("rdd_0_0")
    with pytest.raises(SparkletInternalError, match="rdd_0_0"):
        h.bm.validate_state()
    h.bm.block_id_to_info.clear()


def test_failing_replication_releases_the_pin(tmp_path):
    def refuse(block_id, data, level):
        raise ConnectionError("no peer")

    bm = BlockManager("e1", memory_bytes=10**6, directory=str(tmp_path / "e1"), on_block_status=lambda s: None,
                      replicate=refuse)
    rdd = ListRDD(FakeContext(), [[1, 2]], StorageLevel(False, True, False, True, 2))
    with pytest.raises(ConnectionError):
        list(rdd.iterator(rdd.partitions[0], TaskContext(0, 0, 0, 0, 0, env=bm)))
    stats = bm.statistics()
    assert stats.memory.pinned == 0 and stats.blocks_in_memory == 1  # stored here all the same
    assert msgpack.unpackb(msgpack.packb(stats.as_dict()))["memory"]["blocks"] == 1
    bm.validate_state()
    bm.close()
