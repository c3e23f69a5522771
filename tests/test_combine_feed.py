"""The map-side combine fused into the record loop (rdd/_combine.py): every shape gives
exactly what the step-by-step pipeline and the plain combine give, errors included, and the
writer's memory bound holds when fed."""

from __future__ import annotations

import collections
import operator
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sparklet import Context
from sparklet.rdd import _combine
from sparklet.rdd._shuffled import Combiners, combine_values_by_key
from sparklet.rdd._util import fused_loop, identity, record_steps_func
from sparklet.runtime import TaskEnd
from sparklet.shuffle import ShuffleWriter, decode_segment, read_segment, remove_map_output

from test_shuffle_support import SETTINGS, files

QUIET = {"ui.showConsoleProgress": False}
SUM = Combiners.of(identity, operator.add, operator.add)
PLUS = Combiners.of(lambda v: v, lambda a, b: a + b, lambda a, b: a + b)  # not recognized: called
LISTS = Combiners.of(lambda v: [v], lambda c, v: c + [v], operator.add)


def fold(feed, limit: int = 1 << 30) -> dict:
    combiners: dict = {}
    while not feed(combiners, limit):
        pass
    return combiners


def reference(records, steps, aggregator) -> dict:
    """The step-by-step pipeline, then the plain combine."""
    loop = fused_loop(tuple(kind for kind, _ in steps))(iter(records), *(f for _, f in steps))
    return dict(combine_values_by_key(aggregator, loop))


STEP_CHOICES = {
    "pair": ("map", lambda x: (x, 1)),
    "pair_float": ("map", lambda x: (x, 0.5)),
    "pair_true": ("map", lambda x: (x, True)),  # True + True == 2, but one True stays True
    "key_mod": ("map", lambda x: (x % 7, x)),
    "even": ("filter", lambda x: x % 2 == 0),
    "twice": ("flatMap", lambda x: [x, x + 1]),
    "none": ("flatMap", lambda x: []),
}


@SETTINGS
@given(data=st.lists(st.integers(-50, 50), max_size=200),
       prefix=st.lists(st.sampled_from(["even", "twice", "none"]), max_size=3),
       last=st.sampled_from(["pair", "pair_float", "pair_true", "key_mod"]),
       aggregator=st.sampled_from([SUM, PLUS, LISTS]),
       limit=st.integers(1, 50))
def test_generated_loop_equals_the_step_by_step_pipeline(data, prefix, last, aggregator, limit):
    steps = tuple(STEP_CHOICES[name] for name in [*prefix, last])
    feed = _combine._LoopFeed(iter(data), steps, aggregator)
    got = fold(feed, limit)
    expected = reference(data, steps, aggregator)
    assert got == expected and list(got) == list(expected)  # first-seen key order too
    assert [type(v) for v in got.values()] == [type(v) for v in expected.values()]


def test_a_feed_returns_after_about_limit_records_and_resumes():
    steps = (("flatMap", lambda n: range(n)), ("map", lambda x: (x % 3, 1)))
    feed = _combine._LoopFeed(iter([4, 4, 4, 4]), steps, SUM)
    combiners: dict = {}
    assert feed(combiners, 5) is False  # after the source record that reached 5: 8 records
    assert sum(combiners.values()) == 8
    assert feed(combiners, 100) is True
    assert combiners == {0: 8, 1: 4, 2: 4}


def test_shapes_are_recognized_by_their_code_alone():
    assert _combine.pair_constant(lambda word: (word, 1)) == 1
    assert _combine.pair_constant(lambda w: (w, "x")) == "x"
    assert _combine.pair_constant(lambda w: (w, w)) is _combine._MISSING
    assert _combine.pair_constant(lambda w, *rest: (w, 1)) is _combine._MISSING
    one = 1
    assert _combine.pair_constant(lambda w: (w, one)) is _combine._MISSING  # a closure: may change
    assert _combine._splits_on_whitespace(str.split) and _combine._splits_on_whitespace(lambda s: s.split())
    assert not _combine._splits_on_whitespace(lambda s: s.split(","))
    words = (("flatMap", str.split), ("map", lambda w: (w, 1)))
    assert _combine._counts_words(words, SUM)
    assert not _combine._counts_words(words, PLUS)
    assert not _combine._counts_words((words[0], ("map", lambda w: (w, True))), SUM)
    assert not _combine._counts_words((words[0], ("map", lambda w: (w, 2))), SUM)


class Shouting(str):
    def split(self, sep=None, maxsplit=-1):  # noqa: ARG002 - a subclass's own split must be honoured
        return [self.upper()]


def test_counting_in_c_equals_counter_and_honours_str_subclasses():
    rng = random.Random(5)
    lines = [" ".join(rng.choice("ab cd ef gh ij".split()) for _ in range(rng.randint(0, 9))) for _ in range(500)]
    lines[17] = "  leading and   trailing  "
    lines[40] = Shouting("quiet words")
    for steps in [(("flatMap", str.split), ("map", lambda w: (w, 1))),
                  (("flatMap", lambda line: line.split()), ("map", lambda w: (w, 1)))]:
        feed = _combine._CountingFeed(iter(lines), steps, SUM)
        for limit in (1, 7, 1 << 20):
            feed = _combine._CountingFeed(iter(lines), steps, SUM)
            got = fold(feed, limit)
            expected = reference(lines, steps, SUM)
            assert got == expected and list(got) == list(expected)
    assert "QUIET WORDS" in expected or "quiet" in expected  # str.split and the lambda differ here


def test_counting_in_c_fails_as_the_pipeline_does_on_a_line_that_is_no_str():
    steps = (("flatMap", str.split), ("map", lambda w: (w, 1)))
    with pytest.raises(TypeError) as fused:
        fold(_combine._CountingFeed(iter(["a b", 3]), steps, SUM))
    with pytest.raises(TypeError) as plain:
        reference(["a b", 3], steps, SUM)
    assert str(fused.value) == str(plain.value)


def test_stop_iteration_from_user_code_fails_the_task():
    def stop(_):
        raise StopIteration("inner")

    for steps, aggregator in [((("map", stop),), SUM),
                              ((("map", lambda x: (x, 1)),), Combiners.of(identity, lambda a, b: stop(a), operator.add))]:
        with pytest.raises(RuntimeError, match="Caught StopIteration thrown from user's code"):
            fold(_combine._LoopFeed(iter([1, 1, 1]), steps, aggregator))


def test_a_key_error_from_merge_value_is_not_taken_for_a_new_key():
    def merge(combiner, value):
        if value == 13:
            raise KeyError("the user's lookup failed")
        return combiner + value

    records = [("hot", 1)] * 5000 + [("hot", 13)] + [("hot", 1)] * 10
    feed = _combine.records_feed(records, Combiners.of(identity, merge, merge))
    with pytest.raises(KeyError, match="user's lookup"):
        fold(feed, 100)  # by then new keys are rare: the try/except loop runs


@pytest.mark.parametrize("budget", [4 << 10, 64 << 10])
def test_a_fed_writer_keeps_its_memory_bound_and_its_answer(budget, tmp_path):
    rng = random.Random(1)
    lines = [" ".join(f"w{rng.randrange(20_000)}" for _ in range(10)) for _ in range(4000)]
    steps = (("flatMap", str.split), ("map", lambda w: (w, 1)))
    writer = ShuffleWriter(shuffle_id=0, map_id=0, num_partitions=3, partition_of=lambda k: hash(k) % 3,
                           aggregator=SUM, map_side_combine=True, memory_budget=budget, directory=str(tmp_path))
    output = writer.write_combining(_combine._CountingFeed(iter(lines), steps, SUM))
    writer.validate_state()
    assert output.spills > 0
    assert output.peak_memory <= 1.15 * budget + 1024
    totals: collections.Counter = collections.Counter()
    for r in range(3):
        for key, count in decode_segment(read_segment(output.path, output.offsets[r], output.sizes[r])):
            totals[key] += count
    assert totals == collections.Counter(w for line in lines for w in line.split())
    remove_map_output(output)
    assert files(str(tmp_path)) == []


def test_write_combining_needs_a_combining_writer(tmp_path):
    writer = ShuffleWriter(shuffle_id=0, map_id=0, num_partitions=1, partition_of=lambda k: 0, aggregator=None,
                           map_side_combine=False, memory_budget=1 << 20, directory=str(tmp_path))
    with pytest.raises(ValueError, match="combining writer"):
        writer.write_combining(lambda combiners, limit: True)


def test_wordcount_end_to_end_fused_and_cached(tmp_path, monkeypatch):
    rng = random.Random(2)
    corpus = tmp_path / "words.txt"
    corpus.write_text("\n".join(" ".join(f"w{rng.randrange(5000)}" for _ in range(12)) for _ in range(3000)) + "\n")
    expected = collections.Counter(corpus.read_text().split())
    counting_calls = []
    real_call = _combine._CountingFeed.__call__
    monkeypatch.setattr(_combine._CountingFeed, "__call__",
                        lambda self, combiners, limit: counting_calls.append(limit) or real_call(self, combiners, limit))
    conf = {**QUIET, "shuffle.memory": "64k"}
    with Context("inproc[2]", "fused", conf=conf) as sc:  # executors in this process: the spy sees them
        lines = sc.textFile(str(corpus), 3)
        counts = lines.flatMap(str.split).map(lambda w: (w, 1)).reduceByKey(operator.add, 2)
        assert dict(counts.collect()) == expected
        events = sc.listener_events(TaskEnd)
        assert sum(e.metrics.get("records_read", 0) for e in events) == 3000
        assert sum(e.metrics.get("shuffle_spills", 0) for e in events) > 0
        assert counting_calls
        pairs = lines.flatMap(str.split).map(lambda w: (w, 1)).cache()  # a cached pipeline feeds from its cache
        assert dict(pairs.reduceByKey(operator.add, 2).collect()) == expected
        assert sc.storage_status(pairs)


@SETTINGS
@given(data=st.lists(st.integers(-50, 50), max_size=100),
       names=st.lists(st.sampled_from(["even", "twice", "none", "key_mod"]), max_size=4),
       stop_at=st.one_of(st.none(), st.integers(-50, 50)))
def test_builtin_pipeline_equals_the_generated_loop_stop_iteration_included(data, names, stop_at):
    def guard(x):
        if x == stop_at:
            raise StopIteration(x)
        return x

    steps = (("map", guard), *(STEP_CHOICES[name] for name in names))
    kinds, functions = tuple(k for k, _ in steps), tuple(f for _, f in steps)

    def outcome(records):
        try:
            return list(records)
        except Exception as exc:  # the same error, whichever runs: a caught stop, or a step's TypeError
            return type(exc).__name__, str(exc.args[0])

    assert outcome(record_steps_func(steps)(0, iter(data))) == outcome(fused_loop(kinds)(iter(data), *functions))
    assert outcome(record_steps_func(steps)(0, data)) == outcome(fused_loop(kinds)(data, *functions))



def test_only_our_stop_iteration_guard_is_taken_off_a_user_function():
    import functools

    calls = []

    @functools.wraps(operator.add)
    def logged_add(a, b):
        calls.append((a, b))
        return a + b

    aggregator = Combiners.of(identity, logged_add, logged_add)
    got = fold(_combine._LoopFeed(iter("abab"), (("map", lambda x: (x, 1)),), aggregator))
    assert got == {"a": 2, "b": 2} and calls == [(1, 1), (1, 1)]  # the decorator ran: not inlined as +
