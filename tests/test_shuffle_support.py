"""Helpers shared by the ``test_shuffle_*`` modules: a whole shuffle run without any
runtime (writers, the segments a fetch would carry, readers), plain-Python references,
and Hypothesis strategies for awkward keys. Imported as ``test_shuffle_support``;
pytest collects it and finds no tests."""

from __future__ import annotations

import collections
import operator
import os
import random
from dataclasses import dataclass, field
from typing import Any, Callable

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from sparklet.shuffle import (
    Aggregator, MapOutput, ShuffleReader, ShuffleWriter, decode_segment, read_segment, remove_map_output,
)

SETTINGS = settings(max_examples=30, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

SUM = Aggregator(lambda v: v, operator.add, operator.add)


def _append(combiner: list, value: Any) -> list:
    combiner.append(value)
    return combiner


LISTS = Aggregator(lambda v: [v], _append, operator.add)  # groupByKey: combiners that grow

# Keys: None, ints, strings, tuples of them, mixed in one run (never bools or floats,
# which equal ints and would make the references below ambiguous).
scalar_keys = st.one_of(st.none(), st.integers(-50, 50), st.text(max_size=4))
keys = st.one_of(scalar_keys, st.tuples(scalar_keys, scalar_keys))
values = st.integers(-1000, 1000)
records = st.lists(st.tuples(keys, values), max_size=300)


@st.composite
def skewed_records(draw: Any) -> list:
    """Most records on a few hot keys, the rest spread."""
    hot = draw(st.lists(keys, min_size=1, max_size=3))
    n = draw(st.integers(0, 400))
    seed = draw(st.integers(0, 2 ** 32))
    rng = random.Random(seed)
    cold = draw(st.lists(keys, min_size=1, max_size=30))
    return [(rng.choice(hot) if rng.random() < 0.8 else rng.choice(cold), rng.randint(-9, 9)) for _ in range(n)]


def order_key(key: Any) -> tuple:
    """A total order on the test keys that agrees with equality."""
    return (type(key).__name__, repr(key))


def partitioner(n: int) -> Callable[[Any], int]:
    return lambda key: hash(key) % n


MODES = {
    # name: (aggregator, map_side_combine, key_ordering)
    "plain": (None, False, None),
    "combine_map_side": (SUM, True, None),
    "combine_reduce_side": (SUM, False, None),
    "group_map_side": (LISTS, True, None),
    "sorted": (None, False, order_key),
    "sorted_combined": (SUM, True, order_key),
    "sorted_grouped_reduce_side": (LISTS, False, order_key),
}


@dataclass
class ShuffleRun:
    outputs: list[MapOutput]
    results: list[list[tuple]]  # per reduce partition, in the order the reader yielded
    writers: list[ShuffleWriter] = field(default_factory=list)
    readers: list[ShuffleReader] = field(default_factory=list)

    def cleanup(self) -> None:
        for output in self.outputs:
            remove_map_output(output)


def run_shuffle(maps: list[list], partitions: int, mode: str, directory: str, *, budget: int = 1 << 30,
                ascending: bool = True, segment_order: Callable[[list], list] | None = None,
                compression: str | None = "none", batch_size: int = 1024) -> ShuffleRun:
    aggregator, map_side, ordering = MODES[mode]
    outputs, writers = [], []
    for map_id, records_of_map in enumerate(maps):
        writer = ShuffleWriter(shuffle_id=7, map_id=map_id, num_partitions=partitions,
                               partition_of=partitioner(partitions), aggregator=aggregator,
                               map_side_combine=map_side, memory_budget=budget, directory=directory,
                               batch_size=batch_size, compression=compression)
        outputs.append(writer.write(iter(records_of_map)))
        writers.append(writer)
    results, readers = [], []
    for reduce_id in range(partitions):
        segments = [read_segment(o.path, o.offsets[reduce_id], o.sizes[reduce_id]) for o in outputs]
        if segment_order is not None:
            segments = segment_order(segments)
        reader = ShuffleReader(aggregator=aggregator, map_side_combined=map_side, key_ordering=ordering,
                               ascending=ascending, memory_budget=budget, directory=directory)
        results.append(list(reader.read(iter(segments))))
        readers.append(reader)
    return ShuffleRun(outputs, results, writers, readers)


# -- references -----------------------------------------------------------------------------------------

def reference_partitions(maps: list[list], partitions: int) -> list[list]:
    by_partition: list[list] = [[] for _ in range(partitions)]
    part = partitioner(partitions)
    for records_of_map in maps:
        for key, value in records_of_map:
            by_partition[part(key)].append((key, value))
    return by_partition


def canonical(records: list) -> list:
    """A comparable, order-free form of a list of records (values that are lists are sorted)."""
    return sorted((order_key(k), sorted(v) if isinstance(v, list) else v) for k, v in records)


def reference(maps: list[list], partitions: int, mode: str) -> list[list]:
    """What each reduce partition must hold, in :func:`canonical` form."""
    aggregator, _, _ = MODES[mode]
    out = []
    for records_of_partition in reference_partitions(maps, partitions):
        if aggregator is None:
            out.append(canonical(records_of_partition))
            continue
        combined: dict = {}
        for key, value in records_of_partition:
            combined[key] = aggregator.mergeValue(combined[key], value) if key in combined else aggregator.createCombiner(value)
        out.append(canonical(list(combined.items())))
    return out


def check_run(run: ShuffleRun, maps: list[list], partitions: int, mode: str, ascending: bool = True) -> None:
    aggregator, _, ordering = MODES[mode]
    expected = reference(maps, partitions, mode)
    for reduce_id, got in enumerate(run.results):
        assert canonical(got) == expected[reduce_id], f"reduce partition {reduce_id} differs in mode {mode}"
        if aggregator is not None:
            keys_seen = [order_key(k) for k, _ in got]
            assert len(keys_seen) == len(set(keys_seen)), "a key came out twice"
        if ordering is not None:
            order = [ordering(k) for k, _ in got]
            assert order == sorted(order, reverse=not ascending)
    for output in run.outputs:
        check_output(output)
    for component in run.writers + run.readers:
        component.validate_state()


def check_output(output: MapOutput) -> None:
    """Offsets, sizes, bytes and records agree with the data file."""
    assert output.offsets[0] == 0
    assert all(a <= b for a, b in zip(output.offsets, output.offsets[1:]))
    assert output.bytes_written == output.offsets[-1] == os.path.getsize(output.path) == sum(output.sizes)
    count = 0
    for reduce_id, size in enumerate(output.sizes):
        count += sum(1 for _ in decode_segment(read_segment(output.path, output.offsets[reduce_id], size)))
    assert count == output.records


def files(directory: str) -> list[str]:
    return sorted(os.listdir(directory))


def word_records(n: int, seed: int = 0, vocabulary: int = 5000) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 12))) for _ in range(vocabulary)]
    return [((rng.choice(words) + "!")[:-1], rng.randrange(1 << 30)) for _ in range(n)]  # distinct str objects


def counter_of(records: list) -> collections.Counter:
    return collections.Counter(records)
