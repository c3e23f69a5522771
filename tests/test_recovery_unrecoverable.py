"""When recovery is impossible the error says exactly which partition could not be
rebuilt and why, and the context keeps serving."""

from __future__ import annotations

import os

import pytest

from sparklet import Context
from sparklet.runtime._dag_recovery import PartitionUnrecoverableError

QUIET = {"ui.showConsoleProgress": False, "task.maxFailures": 2}


@pytest.mark.parametrize("master", ["inproc[2]", "local[2]"])
def test_a_lost_checkpoint_file_fails_naming_the_rdd_the_partition_and_why(master, tmp_path):
    with Context(master, "lost-checkpoint", conf=QUIET) as sc:
        sc.setCheckpointDir(str(tmp_path))
        doubled = sc.parallelize(range(20), 4).map(lambda x: x * 2)
        doubled.checkpoint()
        assert doubled.count() == 20 and doubled.isCheckpointed()
        lost = os.path.join(doubled.getCheckpointFile(), "part-00002")
        os.unlink(lost)
        with pytest.raises(PartitionUnrecoverableError) as caught:
            doubled.map(lambda x: x + 1).collect()
        message = str(caught.value)
        assert message.startswith(f"partition 2 of {doubled!r} cannot be rebuilt: its lineage was truncated by "
                                  f"checkpoint() and its checkpoint file {lost} is gone (FileNotFoundError")
        assert isinstance(caught.value.__cause__, FileNotFoundError)
        assert any("failed 2 times" in note for note in caught.value.__notes__)
        assert sc.parallelize(range(5)).sum() == 10  # the context goes on serving
        with pytest.raises(PartitionUnrecoverableError, match="partition 2 of"):  # and says so every time
            doubled.filter(lambda x: x < 10).count()


def test_a_plain_user_error_is_not_mistaken_for_a_lost_partition(tmp_path):
    with Context("inproc[2]", "user-error", conf=QUIET) as sc:
        def read(_):
            with open(tmp_path / "absent.txt") as f:
                return f.read()

        with pytest.raises(FileNotFoundError, match="absent.txt"):
            sc.parallelize([1], 1).map(read).collect()
