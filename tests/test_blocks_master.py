"""The driver's BlockManagerMasterCore, driven synchronously; ``validate_state`` after
every step."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparklet.actors import SparkletInternalError
from sparklet.runtime._block_master import BlockManagerMasterCore, ExecutorStorageStatus, RDDStorageInfo
from sparklet.runtime._blocks import BlockStatus, broadcast_block_id, rdd_block_id

pytestmark = pytest.mark.timeout(30)


def mem(block_id: str, executor_id: str, size: int = 10) -> BlockStatus:
    return BlockStatus(block_id, executor_id, "memory", memory_size=size)


def disk(block_id: str, executor_id: str, size: int = 10) -> BlockStatus:
    return BlockStatus(block_id, executor_id, "disk", disk_size=size)


def none(block_id: str, executor_id: str) -> BlockStatus:
    return BlockStatus(block_id, executor_id, "none")


class Checked:
    """The core, validated after every call."""

    def __init__(self) -> None:
        self.core = BlockManagerMasterCore()

    def __getattr__(self, name):
        method = getattr(self.core, name)

        def call(*args, **kwargs):
            result = method(*args, **kwargs)
            self.core.validate_state()
            return result

        return call


@pytest.fixture
def master():
    checked = Checked()
    checked.register_executor("e1", "host-a", 1000)
    checked.register_executor("e2", "host-b", 2000)
    yield checked
    for status in checked.executors():
        checked.executor_lost(status.executor_id)
    assert checked.core.block_id_to_locations == {} and checked.core.rdd_id_to_partitions == {}
    assert checked.core.executor_id_to_info == {}


def test_updates_track_locations_memory_first(master):
    master.update_block(disk("rdd_1_0", "e1"))
    master.update_block(mem("rdd_1_0", "e2"))
    master.update_block(mem("rdd_1_1", "e1"))
    assert master.locations("rdd_1_0") == ["e2", "e1"]
    assert master.cache_locations(1) == {0: ["e2", "e1"], 1: ["e1"]}
    assert master.locations("rdd_9_9") == [] and master.cache_locations(9) == {}
    master.update_block(disk("rdd_1_1", "e1", 7))  # memory -> disk on the same executor
    assert master.executors() == [ExecutorStorageStatus("e1", "host-a", 1000, 0, 17, 2),
                                  ExecutorStorageStatus("e2", "host-b", 2000, 10, 0, 1)]
    master.update_block(none("rdd_1_0", "e2"))
    master.update_block(none("rdd_1_0", "e2"))  # already gone: a no-op
    assert master.locations("rdd_1_0") == ["e1"]
    master.update_block(none("rdd_1_0", "e1"))
    assert master.locations("rdd_1_0") == [] and master.cache_locations(1) == {1: ["e1"]}
    assert master.blocks_on("e1") == ["rdd_1_1"] and master.blocks_on("e9") == []


def test_rdd_storage_info_sums_replicas(master):
    master.update_block(mem("rdd_4_0", "e1", 100))
    master.update_block(mem("rdd_4_0", "e2", 100))
    master.update_block(disk("rdd_4_2", "e2", 30))
    master.update_block(mem("broadcast_1", "e1", 5))
    assert master.rdd_storage_info(4) == RDDStorageInfo(
        rdd_id=4, num_partitions_cached=2, memory_size=200, disk_size=30,
        partitions={0: [("e1", "memory"), ("e2", "memory")], 2: [("e2", "disk")]})
    assert master.rdd_storage_info(5) == RDDStorageInfo(5, 0, 0, 0, {})


def test_executor_lost_names_blocks_that_lost_a_location(master):
    master.update_block(mem("rdd_1_0", "e1"))
    master.update_block(mem("rdd_1_0", "e2"))
    master.update_block(disk("rdd_1_1", "e1"))
    master.update_block(mem(broadcast_block_id(3), "e1"))
    assert master.executor_lost("e1") == ["broadcast_3", "rdd_1_0", "rdd_1_1"]
    assert master.locations("rdd_1_0") == ["e2"]  # a replica survives
    assert master.locations("rdd_1_1") == [] and master.locations("broadcast_3") == []  # gone
    assert master.cache_locations(1) == {0: ["e2"]}
    assert master.executor_lost("e1") == []  # reported twice: nothing more
    assert [e.executor_id for e in master.executors()] == ["e2"]


def test_report_from_unknown_executor_is_ignored(master):
    master.executor_lost("e2")
    master.update_block(mem("rdd_1_0", "e2"))  # raced the loss
    master.update_block(mem("rdd_1_0", "e9"))
    assert master.locations("rdd_1_0") == [] and master.core.ignored_updates == 2


def test_reregistering_an_executor_forgets_its_old_blocks(master):
    master.update_block(mem("rdd_1_0", "e1"))
    assert master.register_executor("e1", "host-c", 500) == ["rdd_1_0"]
    assert master.locations("rdd_1_0") == []
    assert master.executors()[0] == ExecutorStorageStatus("e1", "host-c", 500, 0, 0, 0)
    with pytest.raises(ValueError, match="max_memory"):
        master.register_executor("e3", "h", -1)
    with pytest.raises(ValueError, match="executor_id"):
        master.register_executor("", "h", 1)
    with pytest.raises(TypeError, match="BlockStatus"):
        master.update_block(("rdd_1_0", "e1", "memory"))


def test_remove_rdd_and_remove_block_say_whom_to_tell(master):
    master.update_block(mem("rdd_2_0", "e1"))
    master.update_block(mem("rdd_2_1", "e2"))
    master.update_block(mem("rdd_2_1", "e1"))
    master.update_block(mem("rdd_3_0", "e2"))
    master.update_block(mem("broadcast_0", "e2"))
    assert master.remove_rdd(2) == ["e1", "e2"]
    assert master.cache_locations(2) == {} and master.cache_locations(3) == {0: ["e2"]}
    assert master.remove_rdd(2) == []
    master.update_block(none("rdd_2_0", "e1"))  # the executors' confirmations are no-ops
    assert master.remove_block("broadcast_0") == ["e2"] and master.remove_block("broadcast_0") == []
    assert master.executors()[1].blocks == 1


def test_validate_state_catches_corruption(master):
    master.update_block(mem("rdd_1_0", "e1"))
    master.core.executor_id_to_info["e1"].memory_used += 1
    with pytest.raises(SparkletInternalError, match="sizes"):
        master.core.validate_state()
    master.core.executor_id_to_info["e1"].memory_used -= 1
    master.core.block_id_to_locations["rdd_1_1"] = {}
    with pytest.raises(SparkletInternalError, match="no location"):
        master.core.validate_state()
    del master.core.block_id_to_locations["rdd_1_1"]


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("update"), st.sampled_from(["memory", "disk", "none"]), st.integers(0, 2),
                  st.integers(0, 3), st.sampled_from(["e1", "e2", "e3"]), st.integers(0, 100)),
        st.tuples(st.sampled_from(["lost", "register"]), st.sampled_from(["e1", "e2", "e3"])),
        st.tuples(st.just("remove_rdd"), st.integers(0, 2)),
    ),
    max_size=50,
)


@settings(max_examples=200, deadline=None, database=None)
@given(STEPS)
def test_random_steps_keep_state_valid(steps):
    """Against a model: a map (block, executor) -> status, of registered executors only."""
    master = Checked()
    registered: set[str] = set()
    model: dict[tuple[str, str], BlockStatus] = {}
    for step in steps:
        if step[0] == "update":
            _, storage, rdd, part, executor, size = step
            block_id = rdd_block_id(rdd, part)
            status = BlockStatus(block_id, executor, storage, size if storage == "memory" else 0,
                                 size if storage == "disk" else 0)
            master.update_block(status)
            if executor in registered:
                if storage == "none":
                    model.pop((block_id, executor), None)
                else:
                    model[(block_id, executor)] = status
        elif step[0] == "lost":
            lost = master.executor_lost(step[1])
            assert lost == sorted(b for b, e in model if e == step[1])
            registered.discard(step[1])
            model = {k: v for k, v in model.items() if k[1] != step[1]}
        elif step[0] == "register":
            master.register_executor(step[1], "host", 100)
            registered.add(step[1])
            model = {k: v for k, v in model.items() if k[1] != step[1]}
        else:
            told = master.remove_rdd(step[1])
            assert told == sorted({e for (b, e) in model if b.startswith(f"rdd_{step[1]}_")})
            model = {k: v for k, v in model.items() if not k[0].startswith(f"rdd_{step[1]}_")}
        for rdd in range(3):
            info = master.rdd_storage_info(rdd)
            mine = {k: v for k, v in model.items() if k[0].startswith(f"rdd_{rdd}_")}
            assert info.memory_size == sum(s.memory_size for s in mine.values())
            assert info.disk_size == sum(s.disk_size for s in mine.values())
            assert info.num_partitions_cached == len({b for b, _ in mine})
            assert set(master.cache_locations(rdd)) == set(info.partitions)
        for (block_id, executor), status in model.items():
            assert executor in master.locations(block_id)
        assert sum(len(master.locations(b)) for b in {b for b, _ in model}) == len(model)
