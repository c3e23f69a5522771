"""Reliable checkpointing.

``checkpoint()`` marks the RDD and tells the context (``ctx._request_checkpoint``). After the
first job that computes the RDD, the runtime awaits ``rdd._do_checkpoint()``: a job writes
each partition to ``<checkpoint_dir>/rdd-<id>/part-<i:05d>`` (this package's pickle-file
format), then a ``CheckpointRDD`` reading those files replaces the lineage: the RDD's
dependencies become one-to-one on it, the references to its parents are dropped (so the
task binary no longer carries them) and its partitions are the checkpoint's. The partitioner
is kept. ``_do_checkpoint`` is idempotent and safe to call for an RDD already checkpointed
or being checkpointed.
"""

from __future__ import annotations

import os
from typing import Any, Iterable

from sparklet.rdd import _files

__all__ = ["CheckpointMixin"]


class CheckpointMixin:
    @property
    def is_checkpointed(self) -> bool:
        """Whether :meth:`checkpoint` was called (PySpark's attribute).

        >>> sc.range(3).is_checkpointed
        False
        """
        return bool(self._checkpoint_requested or self._checkpointed is not None)  # type: ignore[attr-defined]

    def checkpoint(self) -> None:
        """Mark this RDD for checkpointing. It will be saved to a file inside the checkpoint
        directory set on the context and all references to its parent RDDs will be removed.
        This function must be called before any job has been executed on this RDD. It is
        strongly recommended that this RDD is persisted in memory, otherwise saving it on a
        file will require recomputation.

        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     sc.setCheckpointDir(d)
        ...     rdd = sc.range(5).map(lambda x: x * 2)
        ...     rdd.checkpoint()
        ...     rdd.isCheckpointed(), rdd.count(), rdd.isCheckpointed(), rdd.collect()
        (False, 5, True, [0, 2, 4, 6, 8])
        """
        ctx = self._require_driver("checkpoint")  # type: ignore[attr-defined]
        if ctx.checkpoint_dir is None:
            raise RuntimeError("Checkpoint directory has not been set in the Context")
        if self._checkpointed is None and not self._checkpoint_requested:  # type: ignore[attr-defined]
            self._checkpoint_requested = True
            ctx._request_checkpoint(self)

    def isCheckpointed(self) -> bool:
        """Return whether this RDD is checkpointed and materialized.

        >>> sc.range(3).isCheckpointed()
        False
        """
        return self._checkpointed is not None  # type: ignore[attr-defined]

    def getCheckpointFile(self) -> str | None:
        """Gets the name of the directory to which this RDD was checkpointed (``None`` until it
        is materialized).

        >>> sc.range(3).getCheckpointFile() is None
        True
        """
        checkpointed = self._checkpointed  # type: ignore[attr-defined]
        return getattr(checkpointed, "directory", None)

    def _checkpoint_pending(self) -> bool:
        """Requested, not written yet, not being written: what the runtime checks after a job."""
        return bool(self._checkpoint_requested and self._checkpointed is None  # type: ignore[attr-defined]
                    and not self._checkpoint_in_progress)  # type: ignore[attr-defined]

    async def _do_checkpoint(self) -> None:
        """Write the partitions and replace the lineage (see the module notes)."""
        if not self._checkpoint_pending():
            return
        ctx = self._require_driver("checkpoint")  # type: ignore[attr-defined]
        if ctx.checkpoint_dir is None:
            raise RuntimeError("Checkpoint directory has not been set in the Context")
        directory = os.path.join(os.path.abspath(ctx.checkpoint_dir), f"rdd-{int(self.id)}")  # type: ignore[attr-defined]
        self._checkpoint_in_progress = True
        try:
            os.makedirs(directory, exist_ok=True)
            num_partitions = self.getNumPartitions()  # type: ignore[attr-defined]

            def write(context: Any, iterator: Iterable) -> int:
                name = f"part-{context.partitionId():05d}"
                return _files.write_frames(directory, name, context.taskAttemptId(), iterator, 1024)

            await ctx.run_job_async(self, write)
            from sparklet.rdd._sources import CheckpointRDD

            checkpoint_rdd = CheckpointRDD(ctx, directory, num_partitions)
            checkpoint_rdd.partitioner = self.partitioner  # type: ignore[attr-defined]
            checkpoint_rdd.getNumPartitions()  # validates the files now, on the driver
            self._checkpointed = checkpoint_rdd
            self._deps = []
            self._partitions = None
            self._clear_lineage()
        finally:
            self._checkpoint_in_progress = False

    def _clear_lineage(self) -> None:
        """Drop references to parents once checkpointed (subclasses holding parents override)."""
