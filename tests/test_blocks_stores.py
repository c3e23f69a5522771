"""Block ids, the memory store (LRU within a byte budget, pins) and the disk store
(atomic files), driven synchronously."""

from __future__ import annotations

import collections
import os
import pickle
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparklet.actors import SparkletInternalError
from sparklet.runtime._blocks import (
    BlockStatus, broadcast_block_id, parse_block_id, rdd_block_id, shuffle_block_id,
)
from sparklet.runtime._stores import (
    DiskStore, MemoryStore, deserialize_values, estimate_size, serialize_values,
)

pytestmark = pytest.mark.timeout(30)


# -- block ids -------------------------------------------------------------------------------------------

def test_block_id_helpers_and_parser():
    assert rdd_block_id(3, 1) == "rdd_3_1"
    assert broadcast_block_id(2) == "broadcast_2"
    assert shuffle_block_id(0, 5, 7) == "shuffle_0_5_7"
    assert parse_block_id("rdd_3_1") == ("rdd", (3, 1))
    assert parse_block_id("broadcast_2").kind == "broadcast"
    assert parse_block_id("shuffle_0_5_7").numbers == (0, 5, 7)


@given(st.integers(0, 10**12), st.integers(0, 10**6))
def test_rdd_block_ids_round_trip(rdd_id, partition):
    assert parse_block_id(rdd_block_id(rdd_id, partition)) == ("rdd", (rdd_id, partition))


@pytest.mark.parametrize("bad", ["", "rdd", "rdd_1", "rdd_1_2_3", "broadcast_1_2", "taco_1", "rdd_-1_2",
                                 "rdd_1_x", "../rdd_1_2", "rdd_1_2\n", 7])
def test_bad_block_ids_are_refused_by_name(bad):
    with pytest.raises(ValueError, match="not a block id"):
        parse_block_id(bad)


@pytest.mark.parametrize("args", [(-1, 0), (0, -1), (True, 0), (1.0, 0)])
def test_block_id_helpers_refuse_bad_numbers(args):
    with pytest.raises(ValueError, match="non-negative integer"):
        rdd_block_id(*args)


def test_block_status_validates_storage_and_sizes():
    assert BlockStatus("rdd_1_0", "e1", "memory", 10).disk_size == 0
    with pytest.raises(ValueError, match="storage"):
        BlockStatus("rdd_1_0", "e1", "tape")
    with pytest.raises(ValueError, match="non-negative"):
        BlockStatus("rdd_1_0", "e1", "disk", 0, -1)


# -- serialization and size ------------------------------------------------------------------------------

def test_serialize_falls_back_to_cloudpickle():
    values = [1, "a", (lambda x: x + 1)]
    back = deserialize_values(serialize_values(values))
    assert back[:2] == [1, "a"] and back[2](1) == 2
    with pytest.raises(Exception):
        pickle.dumps(values)


def test_estimate_size_is_cheap_and_plausible_for_big_lists():
    values = [(i, f"key{i}") for i in range(300_000)]
    start = time.perf_counter()
    estimate = estimate_size(values)
    assert time.perf_counter() - start < 0.25  # measures 64 records, not 300,000
    # a pointer, a 2-tuple, an int and a short str per record: about 8 + 56 + 28 + 55 bytes
    assert 100 * len(values) < estimate < 200 * len(values)
    assert estimate_size([]) > 0
    assert estimate_size([{"a": [1, 2, 3]}]) > estimate_size([{}])


# -- memory store ----------------------------------------------------------------------------------------

class LRUModel:
    """The specification: LRU order, a byte capacity, pinned blocks never evicted, a put
    that does not fit after evicting every unpinned block evicts nothing."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.order: collections.OrderedDict[str, int] = collections.OrderedDict()
        self.pins: collections.Counter[str] = collections.Counter()
        self.hits = self.misses = self.evictions = 0

    def put(self, key: str, size: int) -> tuple[bool, list[str]]:
        if size > self.capacity:
            return False, []
        evictable = [k for k in self.order if not self.pins[k]]
        victims: list[str] = []
        while sum(self.order.values()) - sum(self.order[v] for v in victims) + size > self.capacity:
            if len(victims) == len(evictable):
                return False, []
            victims.append(evictable[len(victims)])
        for victim in victims:
            del self.order[victim]
        self.evictions += len(victims)
        self.order[key] = size
        return True, victims

    def get(self, key: str) -> bool:
        if key not in self.order:
            self.misses += 1
            return False
        self.hits += 1
        self.order.move_to_end(key)
        return True


KEYS = [f"rdd_0_{i}" for i in range(6)]
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.sampled_from(KEYS), st.integers(0, 45)),
        st.tuples(st.sampled_from(["get", "remove", "pin", "unpin"]), st.sampled_from(KEYS), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=250, deadline=None, database=None)
@given(OPS)
def test_memory_store_matches_an_lru_model(ops):
    store, model = MemoryStore(100), LRUModel(100)
    tokens: dict[str, list] = collections.defaultdict(list)
    for op, key, size in ops:
        if op == "put":
            if key in model.order:
                with pytest.raises(ValueError, match="already in memory"):
                    store.put_bytes(key, bytes(size))
                continue
            result = store.put_bytes(key, bytes(size))
            stored, victims = model.put(key, size)
            assert (result.stored, [e.block_id for e in result.evicted]) == (stored, victims)
            for victim in victims:
                tokens.pop(victim, None)
        elif op == "get":
            found = model.get(key)
            entry = store.get(key)
            assert (entry is not None) == found
            if found:
                assert entry.value == bytes(model.order[key])
        elif op == "remove":
            removed = store.remove(key)
            assert (removed is not None) == (key in model.order)
            model.order.pop(key, None)
            model.pins.pop(key, None)
            tokens.pop(key, None)
        elif op == "pin":
            entry = store.pin(key)
            assert (entry is not None) == (key in model.order)
            if entry is not None:
                tokens[key].append(entry)
                model.pins[key] += 1
        elif op == "unpin" and tokens.get(key):
            store.unpin(tokens[key].pop())
            model.pins[key] -= 1
        store.validate_state()
        assert store.block_ids() == list(model.order)
        stats = store.statistics()
        assert stats.used == sum(model.order.values()) <= stats.capacity == 100
        assert (stats.blocks, stats.hits, stats.misses, stats.evictions) == (
            len(model.order), model.hits, model.misses, model.evictions)


def test_oversized_block_is_refused_without_evicting():
    store = MemoryStore(100)
    store.put_bytes("rdd_0_0", bytes(60))
    result = store.put_bytes("rdd_0_1", bytes(101))
    assert not result.stored and result.evicted == ()
    assert store.block_ids() == ["rdd_0_0"]
    assert store.statistics().refused == 1


def test_pinned_block_is_not_evicted():
    store = MemoryStore(100)
    store.put_bytes("rdd_0_0", bytes(40))
    store.put_bytes("rdd_0_1", bytes(40))
    pinned = store.get("rdd_0_0", pin=True)
    result = store.put_bytes("rdd_0_2", bytes(40))  # evicts rdd_0_1, the LRU unpinned one
    assert [e.block_id for e in result.evicted] == ["rdd_0_1"]
    refused = store.put_bytes("rdd_0_3", bytes(70))  # only rdd_0_2 is evictable: not enough
    assert not refused.stored and refused.evicted == ()
    assert store.block_ids() == ["rdd_0_0", "rdd_0_2"]
    store.unpin(pinned)
    result = store.put_bytes("rdd_0_3", bytes(70))
    assert [e.block_id for e in result.evicted] == ["rdd_0_0", "rdd_0_2"]
    with pytest.raises(SparkletInternalError, match="not pinned"):
        store.unpin(pinned)


def test_memory_store_deserialized_values_and_sizes():
    store = MemoryStore(10**6)
    values = [{"k": i} for i in range(10)]
    store.put_values("rdd_0_0", values)
    assert store.size("rdd_0_0") == estimate_size(values)
    assert store.get_values("rdd_0_0") == values and store.get_values("rdd_0_0") is not values
    assert deserialize_values(store.get_bytes("rdd_0_0")) == values
    store.put_bytes("rdd_0_1", serialize_values(values))
    assert store.get_values("rdd_0_1") == values
    assert store.size("rdd_0_1") == len(serialize_values(values))
    assert store.get_values("rdd_0_9") is None and store.get_bytes("rdd_0_9") is None
    assert store.statistics().pinned == 0
    with pytest.raises(TypeError):
        store.put_values("rdd_0_2", (1, 2))
    with pytest.raises(ValueError, match="capacity_bytes"):
        MemoryStore(-1)


def test_memory_store_is_thread_safe():
    store = MemoryStore(2_000)

    def worker(n: int) -> None:
        for i in range(300):
            key = f"rdd_{n}_{i % 7}"
            if store.get(key) is None:  # keys are per worker: nobody else puts this one
                store.put_bytes(key, bytes(i % 50))
            if i % 5 == 0:
                store.remove(key)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.validate_state()


# -- disk store ------------------------------------------------------------------------------------------

def test_disk_store_write_read_remove_clear(tmp_path):
    directory = tmp_path / "blocks"
    store = DiskStore(directory)
    assert directory.is_dir()
    assert store.put("rdd_1_0", b"hello") == 5
    assert store.get("rdd_1_0") == b"hello" and store.contains("rdd_1_0") and store.size("rdd_1_0") == 5
    store.put("rdd_1_0", b"hi")  # overwrite
    assert store.get("rdd_1_0") == b"hi" and store.statistics().used == 2
    store.put("rdd_1_1", b"x" * 10)
    assert sorted(os.listdir(directory)) == ["rdd_1_0", "rdd_1_1"]
    assert store.remove("rdd_1_0") and not store.remove("rdd_1_0")
    assert store.get("rdd_1_0") is None
    stats = store.statistics()
    assert (stats.blocks, stats.used, stats.writes) == (1, 10, 3)
    store.validate_state()
    store.clear()
    assert not directory.exists()  # it created the directory, so it removes it


def test_disk_store_writes_atomically(tmp_path):
    store = DiskStore(tmp_path)
    staged = store.stage("rdd_1_0", b"abc")
    assert store.get("rdd_1_0") is None and "rdd_1_0" not in os.listdir(tmp_path)
    store.commit(staged)
    assert store.get("rdd_1_0") == b"abc"
    with pytest.raises(TypeError):  # a failing write leaves no block and no temporary file
        store.put("rdd_1_1", object())
    assert sorted(os.listdir(tmp_path)) == ["rdd_1_0"]
    store.discard(store.stage("rdd_1_2", b"zzz"))
    assert sorted(os.listdir(tmp_path)) == ["rdd_1_0"]
    leftover = store.stage("rdd_1_3", b"tmp")  # a write in flight at shutdown
    (tmp_path / "not_ours.txt").write_text("keep me")
    store.clear()
    assert sorted(os.listdir(tmp_path)) == ["not_ours.txt"] and not os.path.exists(leftover.tmp_path)
    assert tmp_path.is_dir()  # not created by the store: kept


@pytest.mark.parametrize("bad", ["../escape", "a/b", "", ".hidden", "x.tmp"])
def test_disk_store_refuses_unsafe_names(tmp_path, bad):
    store = DiskStore(tmp_path)
    with pytest.raises(ValueError, match="block_id"):
        store.put(bad, b"")
