"""Every docstring example in sparklet.rdd (and in the runtime's public classes) runs
against a real context ``sc`` (``inproc[4]``, PySpark's doctest parallelism), and every
public RDD method has one."""

from __future__ import annotations

import builtins
import contextlib
import doctest
import importlib
import inspect
import io
import os
import pkgutil
from typing import Any

import pytest

import sparklet.rdd
from sparklet.rdd import RDD

from sparklet import Context

MODULES = [importlib.import_module(f"sparklet.rdd.{info.name}")
           for info in sorted(pkgutil.iter_modules(sparklet.rdd.__path__), key=lambda i: i.name)]
RUNTIME_MODULES = [importlib.import_module(f"sparklet.runtime.{name}") for name in ("_context_api", "_shared", "_progress")]

# Engine-facing members of RDDBase: the runtime's interface, not PySpark's API.
ENGINE_FACING = {"compute", "compute_or_read_checkpoint", "iterator", "preferred_locations", "partitions",
                 "dependencies", "determinism", "ctx", "partitioner", "id"}
ACTIONS = {
    "collect", "count", "first", "take", "takeOrdered", "top", "takeSample", "reduce", "fold", "aggregate",
    "treeReduce", "treeAggregate", "sum", "mean", "max", "min", "stats", "variance", "stdev", "sampleVariance",
    "sampleStdev", "histogram", "countByValue", "collectAsMap", "foreach", "foreachPartition", "isEmpty", "lookup",
    "saveAsTextFile", "saveAsPickleFile", "countByKey", "reduceByKeyLocally",
    "sortByKey", "sortBy",  # not actions, but they run jobs (count and sample) when called, as PySpark's
}


def _collect() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = []
    seen = set()
    for module in [sparklet.rdd, *MODULES, *RUNTIME_MODULES]:
        for test in finder.find(module, module.__name__):
            if test.examples and test.name not in seen:
                seen.add(test.name)
                tests.append(test)
    return sorted(tests, key=lambda t: t.name)


DOCTESTS = _collect()


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name.removeprefix("sparklet.") for t in DOCTESTS])
def test_docstring_example(test: doctest.DocTest) -> None:
    # module globals (minus those shadowing builtins, like _sources.range) and a real context
    globs = {k: v for k, v in test.globs.items() if k.startswith("__") or not hasattr(builtins, k)}
    if os.environ.get("SPARKLET_DOCTEST_CONTEXT") == "serial":  # for work on rdd/ alone
        from rdd_support import SerialContext

        if test.name.startswith("sparklet.runtime"):
            pytest.skip("SPARKLET_DOCTEST_CONTEXT=serial covers rdd/ only: runtime examples need a real context")

        context: Any = contextlib.nullcontext(SerialContext(default_parallelism=4))
    else:
        context = Context("inproc[4]", "doctests", conf={"ui.showConsoleProgress": False})
    with context as sc:
        test.globs = {**globs, "sc": sc}
        out = io.StringIO()
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        result = runner.run(test, out=out.write, clear_globs=True)
    assert result.failed == 0, out.getvalue()


def _public_members() -> dict[str, object]:
    members = {}
    for name, member in inspect.getmembers(RDD):
        if name.startswith("_") or name in ENGINE_FACING:
            continue
        members[name] = member
    return members


def test_every_public_rdd_method_has_an_example() -> None:
    with_examples = {t.name.rsplit(".", 1)[-1] for t in DOCTESTS if ".RDD" in t.name or "Mixin." in t.name
                     or "RDDBase." in t.name}
    members = _public_members()
    missing = sorted(name for name in members if name not in with_examples)
    assert not missing, f"public RDD methods without a doctest example: {missing}"
    assert len(members) > 70, sorted(members)


def test_every_action_has_an_awaitable_twin_and_says_what_cancelling_does() -> None:
    members = _public_members()
    twins = [name for name in members if name.endswith("Async")]
    for twin in twins:
        assert twin.removesuffix("Async") in members, twin
        doc = inspect.getdoc(members[twin]) or ""
        assert doc.startswith(f"Awaitable twin of :meth:`{twin.removesuffix('Async')}`; cancelling the awaiting "
                              "task cancels"), twin
        assert inspect.iscoroutinefunction(members[twin]), twin
    assert {t.removesuffix("Async") for t in twins} == ACTIONS | {"unpersist", "zipWithIndex"}


def test_every_doctest_module_is_collected() -> None:
    names = {t.name.split(".")[2] for t in DOCTESTS if t.name.count(".") >= 2}
    for expected in ["_rdd", "_transformations", "_actions", "_aggregations", "_numeric", "_output",
                     "_checkpoint", "_sources", "_partitioner", "_statcounter", "_util", "_storage", "_base"]:
        assert expected in names, expected
