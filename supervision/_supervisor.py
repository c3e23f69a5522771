"""Supervisor: OTP's ``supervisor`` behaviour as an actor of the sparklet kernel.

Theory
======

What it owns
    The child specs it was given (or was given later by ``start_child``), one
    :class:`~sparklet.supervision._child.Child` record per spec in *start order*, the
    restart-intensity window, and the pending restarts (:class:`RestartJob`). The
    actors themselves belong to the kernel; the supervisor reaches them only through
    ``ActorContext`` (spawn, stop, halt_instance/start_instance, resume_child, watch).

How children come and go
    * ``pre_start`` starts the specs in order with ``context.spawn`` (shutdown seconds
      passed down: ``brutal_kill`` -> 0, ``infinity`` -> None) and watches each child. A
      child raising ``Ignore`` is kept as a spec with no actor (dropped if temporary); a
      child whose start fails stops the ones already started, in reverse order, and the
      supervisor's own start fails with :class:`ChildStartFailed` naming the child.
    * A child *fails* (its handler raised): the kernel runs ``handle_child_failure`` in
      this actor's task. The decider picks a :class:`Directive`; RESTART consults the
      restart type, then the strategy.
    * A child *exits* (it stopped itself, or somebody else stopped it): the watch delivers
      ``Terminated``; the restart type decides (permanent: restart; transient: restart if
      abnormal; temporary: forget the spec).
    * A restart: count it in the window (too many -> give up, below); take the group
      (one_for_one, simple_one_for_one: the child; one_for_all: every child;
      rest_for_one: the child and those started after it); stop temporary siblings for
      good; halt the others in *reverse* start order (``halt_instance``: the old instance
      gets ``pre_restart``, the mailbox is kept); then start the group in start order:
      ``start_instance`` on a halted live cell (same reference, same mailbox; the failed
      message is not retried), ``spawn`` with the same name where the cell is gone. With a
      back-off the start waits for a ``RetryRestart`` timer; messages queue meanwhile.
    * A start that fails during a restart counts as a restart and is retried by a
      ``RetryRestart`` self-message (after the back-off delay, if any), never in a loop,
      so ``which_children``, ``terminate_child`` and a shutdown are served in between.

How it fails
    More than ``intensity`` restarts within ``period`` seconds (sliding window): it
    stops every child in reverse start order and raises
    :class:`ReachedMaxRestartIntensity` from the handler that counted the restart, so the
    kernel fails this actor and *its* parent decides (another Supervisor restarts it in
    place: ``pre_restart`` stops the children, the new instance starts them from the
    original specs, as OTP's ``init/1`` runs again). ESCALATE fails it with the child's
    exception the same way. A failed supervisor keeps no running children.

Invariants (``validate_state``; the tests call it after every step)
    1. Every live kernel child has a spec here (running children subset of specs), and
       the record's id is its key; records are in start order.
    2. RUNNING: the live cell, if any, is this record's ``ref`` and is running, suspended
       or stopping (no cell: it has just stopped and its ``Terminated`` is on the way).
    3. RESTARTING: exactly one pending job holds the record; its cell, if any, is halted.
    4. STOPPED: no live cell; never a temporary or simple_one_for_one child (those
       records go when their actor exits).
    5. Jobs: disjoint, non-empty, pending in start order (each driven by one timer or
       one ``RetryRestart`` self-message).
    6. The intensity window fits in one period and holds at most ``intensity`` restarts.

Review checklist (rule or invariant -> the test that enforces it; files test_supervision_*)
    start in order, stop in reverse ...... strategies::test_children_start_in_order_and_stop_in_reverse
    each strategy, who restarts in what order  strategies::test_one_for_one_*, test_one_for_all_*,
                                           test_rest_for_one_*, test_simple_one_for_one_*
    restart type x exit kind ............. strategies::test_restart_type_by_exit_kind
    shutdown timeout, brutal_kill ........ strategies::test_shutdown_timeout_*, test_brutal_kill_*
    intensity window and escalation ...... failures::test_intensity_*, test_one_for_one_gives_up_exactly_*
    a failed start counts, is retried .... failures::test_a_failed_restart_counts_toward_intensity_*
    failing restart loop stays served .... failures::test_a_failing_restart_loop_*
    mailbox kept, failed msg not retried . failures::test_restart_keeps_the_mailbox_*
    invariants 1-6 ....................... every test calls validate_supervisor(); admin::
                                           test_validate_state_reports_a_broken_invariant

Choices and gaps
    * As in OTP, a one_for_all / rest_for_one restart also starts the group's stopped
      (terminated, ignored) members; a child gone before its watch was set is seen as
      ``"not found"``, an abnormal exit (OTP's ``noproc``).
    * A *gone* cell restarted after a back-off cannot keep its mailbox (messages sent in
      the delay are dead letters); a halted one does.
    * Kernel gap: when the kernel stops this supervisor (its parent or the system does),
      it stops the children in its own order, where a respawned child counts as started
      last, and their ``Terminated`` end in dead letters.
"""

from __future__ import annotations

import random as _random
from typing import Any, Iterable, Sequence

import cloudpickle

from sparklet.actors import (
    Actor,
    ActorNotFound,
    ActorRef,
    ActorStopped,
    ChildFailure,
    Ignore,
    Props,
    Terminated,
    handler,
    simenv,
)
from sparklet.supervision._child import Child, ChildState, RestartJob
from sparklet.supervision._errors import (
    ChildAlreadyPresent,
    ChildAlreadyStarted,
    ChildExited,
    ChildNotFound,
    ChildRestarting,
    ChildRunning,
    ChildStartFailed,
    InvalidChildSpec,
    InvalidSupervisorFlags,
    OperationNotSupported,
    ReachedMaxRestartIntensity,
    SupervisorInvariantError,
)
from sparklet.supervision._intensity import RestartIntensity
from sparklet.supervision._invariants import find_problems
from sparklet.supervision._messages import (
    ChildCounts,
    ChildInfo,
    ChildOpResult,
    CountChildren,
    DeleteChild,
    DescribeSupervisor,
    RestartChild,
    RetryRestart,
    StartChild,
    SupervisorReport,
    TerminateChild,
    ValidateState,
    WhichChildren,
)
from sparklet.supervision._spec import ChildSpec, Decider, Directive, SupervisorFlags, check_children, default_decider

__all__ = ["Supervisor"]

S = ChildState


class Supervisor(Actor):
    """An OTP supervisor. Spawn it like any actor::

        sup = await system.spawn(Supervisor.props(SupervisorFlags("one_for_all"), [
            ChildSpec("db", Props.of(Db, url)),
            ChildSpec("web", Web, restart="transient", shutdown=2.0),
        ]), "app")

    or subclass it and override :meth:`init` (OTP's ``init/1``). ``decider`` maps a
    child's exception to a :class:`Directive` (default: RESTART); ``rng`` seeds the
    back-off jitter.
    """

    def __init__(
        self,
        flags: SupervisorFlags | None = None,
        children: Iterable[ChildSpec] = (),
        *,
        decider: Decider | None = None,
        rng: _random.Random | None = None,
    ) -> None:
        super().__init__()
        self._init_args = (flags, tuple(children))
        flags, specs = self.init()
        if not isinstance(flags, SupervisorFlags):
            raise InvalidSupervisorFlags(f"{type(self).__qualname__}.init() must return (SupervisorFlags, [ChildSpec, ...]), got flags {flags!r}")
        self.flags = flags
        self._specs = check_children(flags, specs)
        self._simple = flags.strategy == "simple_one_for_one"
        self._decider: Decider = decider or default_decider
        self._rng = rng or simenv.new_random()  # seeded under a simulation, so backoff jitter replays
        # Invariant: insertion order is start order; key == record.spec.id (1).
        self._children: dict[str, Child] = {}
        # Invariant: disjoint, non-empty; each record in a job is RESTARTING with job set (3, 5).
        self._jobs: dict[str, RestartJob] = {}
        self._intensity = RestartIntensity(flags.intensity, flags.period)
        self._epoch = simenv.token_hex(4)  # job keys of a previous instance are stale
        self._job_seq = 0
        self._dynamic_seq = 0

    def init(self) -> tuple[SupervisorFlags, Sequence[ChildSpec]]:
        """Return ``(flags, child specs)``. Default: what the constructor was given."""
        flags, children = self._init_args
        return flags or SupervisorFlags(), children

    @classmethod
    def props(
        cls,
        flags: SupervisorFlags | None = None,
        children: Iterable[ChildSpec] = (),
        *,
        decider: Decider | None = None,
        rng: _random.Random | None = None,
    ) -> Props:
        """Props for this supervisor, checking flags and specs now (before any spawn)."""
        flags = flags or SupervisorFlags()
        if not isinstance(flags, SupervisorFlags):
            raise InvalidSupervisorFlags(f"Supervisor.props: flags must be SupervisorFlags, got {flags!r}")
        specs = check_children(flags, children)
        return Props.of(cls, flags, specs, decider=decider, rng=rng)

    # -- lifecycle -------------------------------------------------------------------------
    async def pre_start(self) -> None:
        if self._simple:
            return
        for spec in self._specs:
            try:
                await self._start_new(spec)
            except ChildStartFailed:
                await self._terminate_all("shutdown")
                raise

    async def pre_restart(self, reason: BaseException, message: Any) -> None:
        # Our parent restarts us: children go in our reverse start order before the
        # kernel's own sweep (which then finds none), and the new instance starts afresh.
        await self._terminate_all("shutdown")

    def post_stop(self) -> None:
        self._jobs.clear()

    def children_stop_order(self) -> list[ActorRef]:
        # Reverse *spec* order, which a respawned child keeps (the kernel's own order
        # would count it as started last).
        refs = (self.context.child(child.id) for child in reversed(list(self._children.values())))
        return [ref for ref in refs if ref is not None]

    # -- failures and exits ----------------------------------------------------------------
    async def handle_child_failure(self, failure: ChildFailure) -> None:
        child = self._find(failure.child)
        if child is None or child.state is not S.RUNNING or not self._fresh(failure):
            return  # a failure of an incarnation that was restarted or stopped since
        error = failure.error
        directive = self._decider(error)
        if not isinstance(directive, Directive):
            raise TypeError(f"the decider of {self.context.path} returned {directive!r}, not a Directive")
        self._event("directive", child=child.id, directive=directive.value, error=_describe(error))
        if directive is Directive.RESUME:
            self.context.resume_child(failure.child)
        elif directive is Directive.ESCALATE:
            raise error
        elif directive is Directive.STOP:
            await self._terminate(child, f"error: {_describe(error)}")
        else:
            await self._exited(child, abnormal=True, why=_describe(error), error=error)

    @handler(Terminated)
    async def _on_terminated(self, msg: Terminated) -> None:
        child = self._find(msg.actor)
        if child is None or child.state is not S.RUNNING or self.context.child(child.id) is not None:
            return  # not ours, already accounted for, or a newer incarnation is alive
        self._event("child_exited", child=child.id, reason=msg.reason)
        await self._exited(child, abnormal=msg.abnormal, why=msg.reason, error=None)

    async def _exited(self, child: Child, *, abnormal: bool, why: str, error: BaseException | None) -> None:
        restart = child.spec.restart
        if restart == "temporary" or (restart == "transient" and not abnormal):
            await self._stop_actor(child, f"error: {why}" if error is not None else why)
            self._settle_stopped(child, why)
            return
        await self._restart(child, error if error is not None else ChildExited(f"child {child.id!r} exited ({why})"))

    # -- restarts --------------------------------------------------------------------------
    async def _restart(self, child: Child, reason: BaseException) -> None:
        now = self._now()
        if not self._intensity.add(now):
            await self._give_up(child, reason)
        group = self._group(child)
        for member in reversed(group):  # halt in reverse start order
            if member is not child and member.spec.restart == "temporary":
                await self._terminate(member, "shutdown")
            else:
                await self._halt(member, reason)
        group = [c for c in group if self._children.get(c.id) is c]
        delay = child.backoff.next_delay(now) if child.backoff is not None else 0.0
        job = self._new_job(child, group, now + delay, reason)
        self._event("restart_scheduled", child=child.id, group=[c.id for c in group], delay=delay,
                    reason=_describe(reason), job=job.key)
        if delay > 0:
            self.timers.start_single(("restart", job.key), RetryRestart(job.key), delay)
        else:
            await self._run_job(job)

    async def _halt(self, child: Child, reason: BaseException) -> None:
        if child.state is S.RESTARTING:
            self._leave_job(child)  # already halted or gone; the new job takes it over
            return
        if child.state is S.RUNNING:
            ref = self.context.child(child.id)
            if ref is not None:
                try:
                    await self.context.halt_instance(ref, reason)
                except (ActorNotFound, ActorStopped):
                    pass  # it stopped meanwhile: it will be respawned
        child.move(S.RESTARTING, reason)

    def _new_job(self, trigger: Child, group: list[Child], due: float, reason: BaseException) -> RestartJob:
        self._job_seq += 1
        job = RestartJob(f"{self._epoch}.{self._job_seq}", trigger.id, list(group), due, reason)
        for member in group:
            member.job = job
        self._jobs[job.key] = job
        return job

    def _leave_job(self, child: Child) -> None:
        job, child.job = child.job, None
        if job is None:
            return
        job.pending.remove(child)
        if not job.pending:
            self._drop_job(job)

    def _drop_job(self, job: RestartJob) -> None:
        self._jobs.pop(job.key, None)
        self.timers.cancel(("restart", job.key))

    @handler(RetryRestart)
    async def _on_retry(self, msg: RetryRestart) -> None:
        job = self._jobs.get(msg.job)
        if job is None:
            return  # done, taken over, or from a previous instance
        if job.retrying and not self._intensity.add(self._now()):
            await self._give_up(job.pending[0], job.reason)
        await self._run_job(job)

    async def _run_job(self, job: RestartJob) -> None:
        while job.pending:
            child = job.pending[0]
            try:
                ref = await self._start_existing(child, job.reason)
            except Exception as exc:
                now = self._now()
                delay = child.backoff.next_delay(now) if child.backoff is not None else 0.0
                job.due, job.retrying = now + delay, True
                self._event("child_start_failed", child=child.id, error=_describe(exc))
                self._event("restart_scheduled", child=child.id, group=[c.id for c in job.pending],
                            delay=delay, reason=_describe(exc), job=job.key, retry=True)
                if delay > 0:
                    self.timers.start_single(("restart", job.key), RetryRestart(job.key), delay)
                else:
                    self.ref.tell(RetryRestart(job.key))
                return
            job.pending.pop(0)
            child.job = None
            if ref is None:
                self._settle_stopped(child, "ignored")
            else:
                child.move(S.RUNNING, "restarted")
        self._drop_job(job)

    async def _give_up(self, child: Child, reason: BaseException | None) -> None:
        self._event("max_intensity", child=child.id, intensity=self.flags.intensity,
                    period=self.flags.period, reason=_describe(reason))
        self._intensity.clear()
        await self._terminate_all("shutdown")
        error = ReachedMaxRestartIntensity(
            f"{self.context.path}: more than {self.flags.intensity} restarts within {self.flags.period:g}s "
            f"(last: child {child.id!r}, {_describe(reason)}); its children were stopped"
        )
        raise error from reason

    def _group(self, child: Child) -> list[Child]:
        strategy = self.flags.strategy
        if strategy == "one_for_all":
            return list(self._children.values())
        if strategy == "rest_for_one":
            ordered = list(self._children.values())
            return ordered[ordered.index(child):]
        return [child]

    # -- starting and stopping one child -----------------------------------------------------
    async def _start_new(self, spec: ChildSpec) -> Child | None:
        """First start of a spec. Raises ChildStartFailed; None if ignored and not kept."""
        child = Child(spec, self._rng)
        try:
            ref = await self.context.spawn(spec.props, spec.id, shutdown=spec.shutdown_timeout, watch=True)
        except Ignore:
            self._event("child_ignored", child=spec.id)
            if spec.restart == "temporary" or self._simple:
                return None
            child.move(S.STOPPED, "ignored")
            self._children[spec.id] = child
            return child
        except Exception as exc:
            self._event("child_start_failed", child=spec.id, error=_describe(exc))
            raise ChildStartFailed(f"child {spec.id!r} of {self.context.path} failed to start: {exc}", spec.id) from exc
        child.on_started(ref, self._now())
        child.move(S.RUNNING, "started")
        self._children[spec.id] = child
        self._event("child_started", child=spec.id, ref=ref.path, restarts=0)
        return child

    async def _start_existing(self, child: Child, reason: BaseException | None) -> ActorRef | None:
        """Start an actor for a known spec: in place if its cell lives (halted), else a new
        cell with the same name. Returns None if it declined (Ignore); raises if it failed."""
        ref = self.context.child(child.id)
        if ref is not None:
            try:
                await self.context.start_instance(ref, reason)
            except Ignore:
                self.context.unwatch(ref)
                await self.context.stop(ref, timeout=child.spec.shutdown_timeout, reason="normal")
                self._event("child_ignored", child=child.id)
                return None
        else:
            try:
                ref = await self.context.spawn(child.spec.props, child.id, shutdown=child.spec.shutdown_timeout, watch=True)
            except Ignore:
                self._event("child_ignored", child=child.id)
                return None
        child.on_started(ref, self._now())
        self._event("child_started", child=child.id, ref=ref.path, restarts=child.restarts)
        return ref

    async def _stop_actor(self, child: Child, reason: str) -> None:
        ref = self.context.child(child.id)
        if ref is None:
            return
        self.context.unwatch(ref)
        await self.context.stop(ref, timeout=child.spec.shutdown_timeout, reason=reason)
        self._event("child_terminated", child=child.id, reason=reason, shutdown=child.spec.shutdown)

    async def _terminate(self, child: Child, reason: str) -> None:
        """OTP's terminate_child: stop the actor; keep the spec unless temporary/simple."""
        if child.state is S.RESTARTING:
            self._leave_job(child)
        await self._stop_actor(child, reason)
        self._settle_stopped(child, reason)

    def _settle_stopped(self, child: Child, cause: str) -> None:
        if child.state is not S.STOPPED:
            child.move(S.STOPPED, cause)
        if child.spec.restart == "temporary" or self._simple:
            if self._children.get(child.id) is child:
                del self._children[child.id]
                self._event("child_deleted", child=child.id)

    async def _terminate_all(self, reason: str) -> None:
        for job in list(self._jobs.values()):
            for child in job.pending:
                child.job = None
            self._drop_job(job)
        for child in reversed(list(self._children.values())):
            await self._terminate(child, reason)

    # -- child administration (OTP's API; replies are values, never failures) ---------------
    @handler(StartChild)
    async def _on_start_child(self, msg: StartChild) -> ChildOpResult:
        try:
            payload = cloudpickle.loads(msg.payload)
        except Exception as exc:
            return _error(InvalidChildSpec, f"cannot unpickle the child spec: {_describe(exc)}")
        if self._simple:
            if isinstance(payload, ChildSpec):
                return _error(OperationNotSupported, f"{self.context.path} is simple_one_for_one: start_child takes extra start arguments, not a ChildSpec")
            self._dynamic_seq += 1
            template = self._specs[0]
            spec = template.with_extra_args(f"{template.id}-{self._dynamic_seq}", tuple(payload))
        else:
            if not isinstance(payload, ChildSpec):
                return _error(InvalidChildSpec, f"start_child on {self.context.path} takes a ChildSpec, got {payload!r}")
            spec = payload
            existing = self._children.get(spec.id)
            if existing is not None and existing.state is S.RUNNING:
                return ChildOpResult(existing.ref, ChildAlreadyStarted.__name__,
                                     f"child {spec.id!r} of {self.context.path} is already started", spec.id)
            if existing is not None:
                return _error(ChildAlreadyPresent, f"child {spec.id!r} of {self.context.path} is already present (not running)", spec.id)
        try:
            child = await self._start_new(spec)
        except ChildStartFailed as exc:
            return _error(ChildStartFailed, str(exc), spec.id)
        ref = child.ref if child is not None and child.state is S.RUNNING else None
        return ChildOpResult(ref, "", "", spec.id)

    @handler(TerminateChild)
    async def _on_terminate_child(self, msg: TerminateChild) -> ChildOpResult:
        child = self._find(msg.child)
        if child is None:
            return _error(ChildNotFound, f"{self.context.path} has no child {_show(msg.child)}")
        await self._terminate(child, "shutdown")
        return ChildOpResult(None, "", "", child.id)

    @handler(RestartChild)
    async def _on_restart_child(self, msg: RestartChild) -> ChildOpResult:
        child, problem = self._stopped_child(msg.child_id, "restart_child")
        if problem is not None:
            return problem
        assert child is not None
        try:
            ref = await self._start_existing(child, None)
        except Exception as exc:
            self._event("child_start_failed", child=child.id, error=_describe(exc))
            return _error(ChildStartFailed, f"child {child.id!r} of {self.context.path} failed to start: {exc}", child.id)
        if ref is not None:
            child.move(S.RUNNING, "restart_child")
        return ChildOpResult(ref, "", "", child.id)

    @handler(DeleteChild)
    async def _on_delete_child(self, msg: DeleteChild) -> ChildOpResult:
        child, problem = self._stopped_child(msg.child_id, "delete_child")
        if problem is not None:
            return problem
        assert child is not None
        del self._children[child.id]
        self._event("child_deleted", child=child.id)
        return ChildOpResult(None, "", "", child.id)

    def _stopped_child(self, child_id: str, op: str) -> tuple[Child | None, ChildOpResult | None]:
        path = self.context.path
        if self._simple:
            return None, _error(OperationNotSupported, f"{op} does not apply to simple_one_for_one supervisor {path}", child_id)
        child = self._children.get(child_id)
        if child is None:
            return None, _error(ChildNotFound, f"{path} has no child {child_id!r}", child_id)
        if child.state is S.RUNNING:
            return None, _error(ChildRunning, f"child {child_id!r} of {path} is running", child_id)
        if child.state is S.RESTARTING:
            return None, _error(ChildRestarting, f"child {child_id!r} of {path} is restarting", child_id)
        return child, None

    @handler(WhichChildren)
    def _on_which_children(self, msg: WhichChildren) -> tuple:
        return tuple(self._info(c) for c in self._children.values())

    @handler(CountChildren)
    def _on_count_children(self, msg: CountChildren) -> ChildCounts:
        children = list(self._children.values())
        supervisors = sum(1 for c in children if c.spec.type == "supervisor")
        active = sum(1 for c in children if c.state is S.RUNNING)
        specs = 1 if self._simple else len(children)
        return ChildCounts(specs, active, supervisors, len(children) - supervisors)

    @handler(DescribeSupervisor)
    def _on_describe(self, msg: DescribeSupervisor) -> SupervisorReport:
        f = self.flags
        return SupervisorReport(self.context.path, f.strategy, f.intensity, f.period,
                                self._intensity.count(self._now()), tuple(self._info(c) for c in self._children.values()))

    @handler(ValidateState)
    def _on_validate(self, msg: ValidateState) -> str:
        try:
            self.validate_state()
        except SupervisorInvariantError as exc:
            return str(exc)
        return ""

    def _info(self, child: Child) -> ChildInfo:
        if child.state is S.RUNNING:
            ref = child.ref
        elif child.state is S.RESTARTING:
            ref = self.context.child(child.id)  # a halted cell still takes messages
        else:
            ref = None
        return ChildInfo(child.id, ref, child.spec.type, child.spec.restart, child.state.value, child.restarts)

    # -- invariants ------------------------------------------------------------------------
    def validate_state(self) -> None:
        """Check invariants 1-6 of the module docstring; raise SupervisorInvariantError."""
        ctx = self.context
        live = {ref.name: (ref, ctx.child_state(ref)) for ref in ctx.children}
        template = self._specs[0] if self._simple else None
        problems = find_problems(self._children, self._jobs, live, template)
        problems += self._intensity.problems(self._now())
        if problems:
            history = {cid: [f"{o.value}->{n.value}" for o, n, _, _ in c.fsm.history] for cid, c in self._children.items()}
            raise SupervisorInvariantError(
                f"{ctx.path}: " + "; ".join(problems) + f". Child histories: {history}. Please report it."
            )

    # -- helpers ------------------------------------------------------------------------------
    def _find(self, target: str | ActorRef) -> Child | None:
        if isinstance(target, ActorRef):
            if target.path != f"{self.context.path.rstrip('/')}/{target.name}":
                return None
            target = target.name
        return self._children.get(target) if isinstance(target, str) else None

    def _fresh(self, failure: ChildFailure) -> bool:
        """The failure is of the current incarnation and still awaits a decision."""
        ref = failure.child
        return (self.context.child_state(ref) == "suspended"
                and self.context.system.restart_count(ref) == failure.restart_count)

    def _now(self) -> float:
        return self.context.system.clock.now()

    def _event(self, kind: str, **fields: Any) -> None:
        events = self.context.system.events
        if events.enabled:
            events.record(kind, self.context.path, **fields)


def _describe(error: BaseException | None) -> str:
    return "no error" if error is None else f"{type(error).__name__}: {error}"


def _show(target: object) -> str:
    return repr(target.path) if isinstance(target, ActorRef) else repr(target)


def _error(kind: type, detail: str, child_id: str = "") -> ChildOpResult:
    return ChildOpResult(None, kind.__name__, detail, child_id)
