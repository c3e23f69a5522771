"""The driver's block-manager master: where every cached block and broadcast lives.

An actor around :class:`~sparklet.runtime._block_master.BlockManagerMasterCore` (the
sans-I/O bookkeeping of block locations) plus the broadcast store: the pickled value of
every live broadcast, served to each executor once (executors cache what they fetch).
It also tells executors to drop an RDD's blocks or a broadcast's copies.

Restarted after a crash, it rebuilds both from their sources: every registered executor
(the task scheduler's registry) re-registers and reports each block it holds
(``ReportBlocks``), so a cached RDD's next action still reads the cache, and the live
broadcasts are pickled again from the driver's values (the context keeps each live
broadcast's value, as Spark's driver does). Reports that arrive meanwhile wait in the
mailbox and are applied after; they are facts, so applying one twice changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sparklet.actors import Actor, ActorRef, Local, handler
from sparklet.runtime import _listener as listen
from sparklet.runtime._block_master import BlockManagerMasterCore
from sparklet.runtime._blocks import BlockStatus
from sparklet.runtime._messages import (
    BlockStatusUpdated, DestroyBroadcast, ExecutorGone, GetBroadcast, GetPeers, GetRddStorage, PutBroadcast, RegisterExecutor,
    RemoveBroadcast, RemoveRdd, ReportBlocks, UnpersistBroadcast, UnpersistRdd,
)
from sparklet.runtime._pickling import dumps_closure

__all__ = ["BlockManagerMaster"]


class BlockManagerMaster(Actor):
    def __init__(self, shared: Any) -> None:
        super().__init__()
        self._shared = shared
        self.core = BlockManagerMasterCore()
        self._broadcasts: dict[int, bytes] = {}
        # Invariant: exactly the executors registered in `core`.
        self._executors: dict[str, ActorRef] = {}

    def pre_start(self) -> None:
        self._shared.block_locations = self.core.cache_locations  # the DAG scheduler's read-only view

    async def post_restart(self, reason: BaseException) -> None:
        # Until the rebuild below is done, the DAG scheduler keeps the crashed master's last
        # view: locality hints only (an executor always looks in its own blocks first), and
        # better than none, which would send tasks away from their cached inputs.
        executors = dict(self._shared.executor_refs)
        answers = await asyncio.gather(*(ref.ask(ReportBlocks(), timeout=10) for ref in executors.values()),
                                       return_exceptions=True)
        blocks, silent = 0, []
        for (executor_id, ref), answer in zip(executors.items(), answers):
            if isinstance(answer, BaseException):
                silent.append(executor_id)  # going away: the task scheduler tells us when it is gone
                continue
            host, memory, statuses = answer
            self.core.register_executor(executor_id, host, memory)
            self._executors[executor_id] = ref
            for block_id, storage, memory_size, disk_size in statuses:
                self.core.update_block(BlockStatus(block_id, executor_id, storage, memory_size, disk_size))
                blocks += 1
        values = self._shared.live_broadcasts()
        for bid, value in sorted(values.items()):
            self._broadcasts[bid] = await self._shared.run_on_driver(dumps_closure, value, "the broadcast value")
        found = (f"{len(executors) - len(silent)} executors re-registered {blocks} blocks"
                 + (f" ({', '.join(silent)} did not answer)" if silent else "")
                 + f"; {len(values)} live broadcasts {sorted(values)} from the driver's values")
        self.pre_start()
        self._shared.listener_bus.post(listen.ActorRecovered(
            time.time(), self.context.path, self.context.parent.path if self.context.parent else "",
            self.context.restart_count + 1, f"{type(reason).__name__}: {reason}", found))

    @handler(RegisterExecutor)
    def register(self, msg: RegisterExecutor) -> None:
        self.core.register_executor(msg.executor_id, msg.host, msg.memory)
        self._executors[msg.executor_id] = msg.ref

    @handler(ExecutorGone)
    def executor_gone(self, msg: ExecutorGone) -> None:
        if self._executors.pop(msg.executor_id, None) is not None:
            self.core.executor_lost(msg.executor_id)

    @handler(BlockStatusUpdated)
    def block_status(self, msg: BlockStatusUpdated) -> None:
        self.core.update_block(BlockStatus(msg.block_id, msg.executor_id, msg.storage, msg.memory_size, msg.disk_size))

    @handler(GetPeers)
    def peers(self, msg: GetPeers) -> tuple:
        others = [ref for executor_id, ref in sorted(self._executors.items()) if executor_id != msg.executor_id]
        return tuple(others[: max(0, msg.count)])

    @handler(GetRddStorage)
    def rdd_storage(self, msg: GetRddStorage) -> Local:
        return Local(self.core.rdd_storage_info(msg.rdd_id))

    @handler(UnpersistRdd)
    async def unpersist(self, msg: UnpersistRdd) -> int:
        holders = self.core.remove_rdd(msg.rdd_id)
        removed = 0
        for executor_id in holders:
            ref = self._executors.get(executor_id)
            if ref is not None:
                try:
                    removed += await ref.ask(RemoveRdd(msg.rdd_id), timeout=30)
                except Exception:
                    pass  # that executor is going away; its blocks go with it
        return removed

    # -- broadcasts ---------------------------------------------------------------------------
    @handler(PutBroadcast)
    def put_broadcast(self, msg: PutBroadcast) -> None:
        self._broadcasts[msg.broadcast_id] = msg.data

    @handler(GetBroadcast)
    def get_broadcast(self, msg: GetBroadcast) -> bytes:
        data = self._broadcasts.get(msg.broadcast_id)
        if data is None:
            raise KeyError(f"broadcast {msg.broadcast_id} does not exist (destroyed, or never created)")
        return data

    @handler(UnpersistBroadcast)
    def unpersist_broadcast(self, msg: UnpersistBroadcast) -> None:
        for ref in self._executors.values():
            ref.tell(RemoveBroadcast(msg.broadcast_id))

    @handler(DestroyBroadcast)
    def destroy_broadcast(self, msg: DestroyBroadcast) -> None:
        self._broadcasts.pop(msg.broadcast_id, None)
        for ref in self._executors.values():
            ref.tell(RemoveBroadcast(msg.broadcast_id))

    def cache_locations(self, rdd_id: int) -> dict[int, list[str]]:
        return self.core.cache_locations(rdd_id)

    def statistics(self) -> dict[str, Any]:
        return {"executors": len(self._executors), "broadcasts": len(self._broadcasts)}
