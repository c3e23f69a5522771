"""sparklet.rdd: PySpark's RDD API on sparklet's engine.

``RDD`` and its helpers, plus the source constructors a context calls with itself as first
argument (``parallelize(ctx, c, numSlices)``, ``range``, ``emptyRDD``, ``textFile``,
``wholeTextFiles``, ``pickleFile``, ``union``).
"""

from sparklet.rdd._barrier import BarrierSyncError, BarrierTaskContext, BarrierTaskInfo, RDDBarrier
from sparklet.rdd._base import ActionInLoopError, TaskContext
from sparklet.rdd._partitioner import HashPartitioner, Partitioner, portable_hash
from sparklet.rdd._range_partitioner import RangePartitioner
from sparklet.rdd._rdd import RDD
from sparklet.rdd._shuffled import ResultIterable
from sparklet.rdd._sources import emptyRDD, parallelize, pickleFile, range, textFile, union, wholeTextFiles
from sparklet.rdd._statcounter import StatCounter
from sparklet.rdd._storage import StorageLevel

__all__ = [
    "RDD", "StorageLevel", "StatCounter", "TaskContext", "Partitioner", "HashPartitioner", "RangePartitioner",
    "portable_hash", "ResultIterable",
    "ActionInLoopError", "RDDBarrier", "BarrierTaskContext", "BarrierTaskInfo", "BarrierSyncError",
    "parallelize", "range", "emptyRDD", "textFile", "wholeTextFiles", "pickleFile", "union",
]
