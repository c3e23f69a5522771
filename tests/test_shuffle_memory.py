"""The memory bound: whatever the input size, the writer and reader hold about
``memory_budget``.

What is guaranteed and checked here:

* the *estimated* peak (``peak_memory``, sampled sizes, see ``shuffle/_sizes.py``) stays
  within ``ESTIMATE_SLACK * memory_budget + ONE_RECORD``: the estimate is checked each
  time half the room left is used, so it can pass the budget only by one record plus the
  drift of the sampled per-record size between two checks;
* the *real* allocation peak (``tracemalloc``) of a write or a read stays within
  ``REAL_FACTOR * memory_budget + REAL_FIXED``: the estimate's error, plus the fixed
  overhead (a write buffer of at most 64 KiB, one pickled frame, one decoded input batch).
"""

from __future__ import annotations

import random
import tracemalloc

import pytest

from sparklet.shuffle import ShuffleReader, ShuffleWriter, read_segment, remove_map_output
from sparklet.shuffle._runs import FAN_IN
from sparklet.shuffle._sizes import sizeof

from test_shuffle_support import LISTS, SUM, files, order_key, partitioner

ESTIMATE_SLACK = 1.15
ONE_RECORD = 1024
REAL_FACTOR = 1.5
REAL_FIXED = 64 << 10

_rng = random.Random(0)
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
WORDS = ["".join(_rng.choice(_LETTERS) for _ in range(_rng.randint(2, 12))) for _ in range(20_000)]

WRITER_MODES = {"plain": (None, False), "sum": (SUM, True), "lists": (LISTS, True)}
READER_MODES = {
    "sum": dict(aggregator=SUM, map_side_combined=False, key_ordering=None),
    "lists": dict(aggregator=LISTS, map_side_combined=False, key_ordering=None),
    "sorted": dict(aggregator=None, map_side_combined=False, key_ordering=order_key),
    "sorted_sum": dict(aggregator=SUM, map_side_combined=False, key_ordering=order_key, ascending=False),
}


def stream(total_bytes: int, seed: int = 1):
    """(word, int) records, made as they are consumed, about ``total_bytes`` in memory."""
    rng = random.Random(seed)
    per_record = sizeof((("abcdefg!")[:-1], 1 << 29)) + 8
    for _ in range(total_bytes // per_record):
        yield (rng.choice(WORDS) + "!")[:-1], rng.randrange(1 << 30)


def write(directory: str, budget: int, mode: str, data_bytes: int, partitions: int = 8):
    aggregator, map_side = WRITER_MODES[mode]
    writer = ShuffleWriter(shuffle_id=0, map_id=0, num_partitions=partitions, partition_of=partitioner(partitions),
                           aggregator=aggregator, map_side_combine=map_side, memory_budget=budget, directory=directory)
    return writer, writer.write(stream(data_bytes))


@pytest.mark.parametrize("data_factor", [4, 20])
@pytest.mark.parametrize("mode", sorted(WRITER_MODES))
@pytest.mark.parametrize("budget", [4 << 10, 64 << 10])
def test_writer_memory_bound(budget, mode, data_factor, tmp_path):
    writer, output = write(str(tmp_path), budget, mode, data_factor * budget)
    assert output.spills >= data_factor // 2 if mode != "sum" else output.spills > 0
    assert output.peak_memory <= ESTIMATE_SLACK * budget + ONE_RECORD, output
    if output.spills > FAN_IN:
        assert writer.merge_passes > 0
    remove_map_output(output)
    assert files(str(tmp_path)) == []


@pytest.mark.parametrize("data_factor", [4, 20])
@pytest.mark.parametrize("mode", sorted(READER_MODES))
@pytest.mark.parametrize("budget", [4 << 10, 64 << 10])
def test_reader_memory_bound(budget, mode, data_factor, tmp_path):
    directory = str(tmp_path)
    _, output = write(directory, 1 << 30, "plain", data_factor * budget)  # one map output, no spill
    segments = [read_segment(output.path, output.offsets[r], output.sizes[r]) for r in range(8)]
    reader = ShuffleReader(memory_budget=budget, directory=directory, **READER_MODES[mode])
    count = sum(1 for _ in reader.read(segments))
    assert count > 0 and reader.spills > 0
    if data_factor == 20:
        assert reader.merge_passes > 0  # more runs than one merge takes at once
    assert reader.peak_memory <= ESTIMATE_SLACK * budget + ONE_RECORD, (reader.peak_memory, budget)
    remove_map_output(output)
    assert files(directory) == []


def _real_peak(fn) -> int:
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("mode", sorted(WRITER_MODES))
def test_writer_real_memory_bound(mode, tmp_path):
    budget = 256 << 10
    outputs = []
    peak = _real_peak(lambda: outputs.append(write(str(tmp_path), budget, mode, 20 * budget)[1]))
    assert outputs[0].spills > 0
    assert peak <= REAL_FACTOR * budget + REAL_FIXED, f"{peak / budget:.2f} x budget"
    remove_map_output(outputs[0])


@pytest.mark.parametrize("mode", sorted(READER_MODES))
def test_reader_real_memory_bound(mode, tmp_path):
    budget = 256 << 10
    directory = str(tmp_path)
    _, output = write(directory, 1 << 30, "plain", 20 * budget, partitions=1)
    segment = read_segment(output.path, 0, output.bytes_written)
    reader = ShuffleReader(memory_budget=budget, directory=directory, **READER_MODES[mode])

    def consume() -> None:
        for _ in reader.read([segment]):
            pass

    peak = _real_peak(consume)
    assert reader.spills > 0
    assert peak <= REAL_FACTOR * budget + REAL_FIXED, f"{peak / budget:.2f} x budget"
    remove_map_output(output)


def test_peak_memory_without_spills_is_what_is_held(tmp_path):
    """With room to spare nothing spills, and the estimate is near the data's size."""
    writer, output = write(str(tmp_path), 1 << 30, "plain", 0)
    remove_map_output(output)
    assert output.records == 0 and output.spills == 0
    records = list(stream(1 << 20))
    writer = ShuffleWriter(shuffle_id=0, map_id=1, num_partitions=4, partition_of=partitioner(4), aggregator=None,
                           map_side_combine=False, memory_budget=1 << 30, directory=str(tmp_path))
    output = writer.write(records)
    assert output.spills == 0
    assert 0.7 * (1 << 20) <= output.peak_memory <= 1.3 * (1 << 20)
    remove_map_output(output)
