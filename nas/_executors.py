"""Where trials run: inline, one local process per trial, or Dask distributed.

Note [Executors]
An executor is ``submit / poll / close``: ``submit`` starts one attempt of a
trial, ``poll`` waits up to a timeout and returns the finished attempts as
``Outcome``s (``ok``, ``error`` when the objective raised, ``died`` when its
process vanished, ``timeout``). Retries are the runner's business, not the
executor's.
- ``inline`` calls the objective in this process (no timeouts, no isolation).
- ``local`` forks one process per attempt, so a timeout can kill it and a crash
  (even SIGKILL) is only that trial's problem; the fork costs a few ms.
- ``dask`` submits to a ``distributed`` scheduler (``address``) or to an
  in-process ``LocalCluster`` of ``workers`` single-thread worker processes.
  Dask itself reschedules a task whose worker died; after its own retry limit
  the task fails (``KilledWorker``) and the runner's retry applies. A timed-out
  Dask task is cancelled but a running Python call cannot be interrupted there.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import multiprocessing.connection as mpc
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nas._report import PruneRule, Reporter, TrialPruned, activate, deactivate
from nas._space import Config

__all__ = ["Executor", "Outcome", "make_executor"]

Objective = Callable[..., Any]


@dataclass
class Outcome:
    """One finished attempt."""

    trial_id: int
    status: str  # ok | infeasible | error | died | timeout
    value: float | None = None
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    metrics: dict[str, Any] | None = None


Returned = tuple[float | None, float, float, dict[str, Any] | None]


def _outcome(trial_id: int, ret: Returned) -> Outcome:
    """The outcome of a finished call: ``infeasible`` when the metrics say so."""
    value, t0, t1, metrics = ret
    status = "infeasible" if value is None else "ok"
    error = None if metrics is None or value is not None else metrics.get("error")
    return Outcome(trial_id, status, value, error, t0, t1, metrics)


def call_objective(
    objective: Objective,
    config: Config,
    fidelity: float | None,
    rule: PruneRule | None = None,
) -> Returned:
    """Run the objective once; returns ``(value, started_at, finished_at, metrics)``.

    An objective may return a number, or a dict of metrics whose entry
    ``objective.metric`` is the value (``metric`` defaults to ``"value"``); a dict
    with ``feasible: False`` is an infeasible trial (value None), not an error.
    With a prune ``rule``, ``nas.report`` inside the objective checks it (Note
    [Intermediate reports]); a pruned trial returns the value it reported at
    the rung where it stopped, and the metrics gain ``rungs`` / ``pruned_at``.
    """
    start = time.time()
    reporter = Reporter(rule) if rule is not None else None
    token = activate(reporter)
    try:
        value = objective(config) if fidelity is None else objective(config, fidelity)
    except TrialPruned:
        assert reporter is not None and reporter.rungs
        return float(reporter.rungs[-1][1]), start, time.time(), reporter.metrics()
    finally:
        deactivate(token)
    metrics: dict[str, Any] | None = None
    if isinstance(value, Mapping):
        metrics = dict(value)
        if metrics.get("feasible", True) is False:
            return None, start, time.time(), metrics
        metric = getattr(objective, "metric", "value")
        if metric not in metrics:
            raise TypeError(f"objective returned a dict without its metric {metric!r}")
        value = metrics[metric]
    if isinstance(value, bool) or (
        not isinstance(value, (int, float)) and not hasattr(value, "__float__")
    ):
        raise TypeError(f"objective returned {type(value).__name__}, expected a number")
    if reporter is not None:
        metrics = {**(metrics or {}), **reporter.metrics()}
    return float(value), start, time.time(), metrics


class Executor:
    """Interface of an execution backend (see Note [Executors])."""

    def submit(
        self, trial_id: int, config: Config, fidelity: float | None, rule: PruneRule | None = None
    ) -> None:
        """Start one attempt of ``trial_id`` (``rule``: see Note [Intermediate reports])."""
        raise NotImplementedError

    def poll(self, timeout_s: float) -> list[Outcome]:
        """Wait up to ``timeout_s`` for attempts to finish; return those that did."""
        raise NotImplementedError

    @property
    def running(self) -> int:
        """Attempts started and not yet returned by ``poll``."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop everything still running and release resources."""


class InlineExecutor(Executor):
    """Runs the objective synchronously in ``submit``."""

    def __init__(self, objective: Objective) -> None:
        self.objective = objective
        self._done: list[Outcome] = []

    def submit(
        self, trial_id: int, config: Config, fidelity: float | None, rule: PruneRule | None = None
    ) -> None:
        try:
            ret = call_objective(self.objective, config, fidelity, rule)
            self._done.append(_outcome(trial_id, ret))
        except Exception as err:  # the objective's failure is data, not our crash
            self._done.append(Outcome(trial_id, "error", None, _describe(err), None, time.time()))

    def poll(self, timeout_s: float) -> list[Outcome]:
        done, self._done = self._done, []
        return done

    @property
    def running(self) -> int:
        return len(self._done)


def _describe(err: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(err), err)).strip()


def _child(
    conn: mpc.Connection,
    objective: Objective,
    config: Config,
    fidelity: float | None,
    rule: PruneRule | None,
) -> None:
    try:
        conn.send(("ok", *call_objective(objective, config, fidelity, rule)))
    except BaseException as err:  # report everything, including SystemExit
        conn.send(("error", _describe(err)))
    finally:
        conn.close()


@dataclass
class _Running:
    proc: Any
    conn: mpc.Connection
    started_at: float
    deadline: float | None


class ProcessExecutor(Executor):
    """One forked (or spawned) process per attempt, at most ``workers`` at once."""

    def __init__(
        self, objective: Objective, timeout_s: float | None = None, start_method: str | None = None
    ) -> None:
        self.objective = objective
        self.timeout_s = timeout_s
        methods = mp.get_all_start_methods()
        method = start_method or ("fork" if "fork" in methods else "spawn")
        self._ctx: Any = mp.get_context(method)
        self._running: dict[int, _Running] = {}

    def submit(
        self, trial_id: int, config: Config, fidelity: float | None, rule: PruneRule | None = None
    ) -> None:
        recv, send = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(
            target=_child, args=(send, self.objective, config, fidelity, rule), daemon=True
        )
        proc.start()
        send.close()
        now = time.time()
        deadline = now + self.timeout_s if self.timeout_s else None
        self._running[trial_id] = _Running(proc, recv, now, deadline)

    def poll(self, timeout_s: float) -> list[Outcome]:
        if not self._running:
            return []
        deadlines = [r.deadline for r in self._running.values() if r.deadline is not None]
        if deadlines:
            timeout_s = max(0.0, min(timeout_s, min(deadlines) - time.time()))
        waitables: list[Any] = [r.conn for r in self._running.values()]
        waitables += [r.proc.sentinel for r in self._running.values()]
        mpc.wait(waitables, timeout=timeout_s)
        out: list[Outcome] = []
        now = time.time()
        for tid in list(self._running):
            run = self._running[tid]
            outcome = self._check(tid, run, now)
            if outcome is not None:
                out.append(outcome)
                del self._running[tid]
        return out

    def _check(self, tid: int, run: _Running, now: float) -> Outcome | None:
        if run.conn.poll():
            try:
                msg = run.conn.recv()
            except (EOFError, OSError):
                msg = None
            run.conn.close()
            run.proc.join(timeout=5)
            if msg is None:
                return Outcome(
                    tid,
                    "died",
                    error=f"worker exited with code {run.proc.exitcode}",
                    finished_at=now,
                )
            if msg[0] == "ok":
                return _outcome(tid, msg[1:])
            return Outcome(tid, "error", None, msg[1], run.started_at, now)
        if not run.proc.is_alive():
            run.conn.close()
            return Outcome(
                tid,
                "died",
                error=f"worker exited with code {run.proc.exitcode}",
                started_at=run.started_at,
                finished_at=now,
            )
        if run.deadline is not None and now >= run.deadline:
            self._kill(run)
            return Outcome(
                tid,
                "timeout",
                error=f"timed out after {self.timeout_s} s",
                started_at=run.started_at,
                finished_at=now,
            )
        return None

    @staticmethod
    def _kill(run: _Running) -> None:
        run.proc.kill()
        run.proc.join(timeout=5)
        run.conn.close()

    @property
    def running(self) -> int:
        return len(self._running)

    def close(self) -> None:
        for run in self._running.values():
            self._kill(run)
        self._running.clear()


class DaskExecutor(Executor):
    """Submits attempts to Dask; see Note [Executors]."""

    def __init__(
        self,
        objective: Objective,
        workers: int,
        address: str | None = None,
        timeout_s: float | None = None,
    ) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as err:  # pragma: no cover - depends on the install
            raise ValueError("executor='dask' needs 'dask[distributed]' installed") from err
        self.objective = objective
        self.timeout_s = timeout_s
        self._cluster: Any = None
        if address:
            self._client = Client(address)  # type: ignore[no-untyped-call]
        else:
            self._cluster = LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
            self._client = Client(self._cluster)  # type: ignore[no-untyped-call]
        self._futures: dict[int, tuple[Any, float, float | None]] = {}

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` in use."""
        return self._client

    def submit(
        self, trial_id: int, config: Config, fidelity: float | None, rule: PruneRule | None = None
    ) -> None:
        fut = self._client.submit(
            call_objective, self.objective, config, fidelity, rule, pure=False
        )
        now = time.time()
        self._futures[trial_id] = (fut, now, now + self.timeout_s if self.timeout_s else None)

    def poll(self, timeout_s: float) -> list[Outcome]:
        from distributed import wait

        if not self._futures:
            return []
        with contextlib.suppress(TimeoutError):
            wait(  # type: ignore[no-untyped-call]
                [f for f, _, _ in self._futures.values()],
                timeout=timeout_s,
                return_when="FIRST_COMPLETED",
            )
        out: list[Outcome] = []
        now = time.time()
        for tid in list(self._futures):
            fut, started, deadline = self._futures[tid]
            if fut.status == "finished":
                out.append(_outcome(tid, fut.result()))
            elif fut.status in ("error", "cancelled", "lost"):
                err = fut.exception() if fut.status == "error" else None
                name = type(err).__name__ if err is not None else fut.status
                status = "died" if name in ("KilledWorker", "lost", "cancelled") else "error"
                msg = _describe(err) if err is not None else f"task {fut.status}"
                out.append(Outcome(tid, status, None, msg, started, now))
            elif deadline is not None and now >= deadline:
                fut.cancel()
                out.append(
                    Outcome(
                        tid, "timeout", None, f"timed out after {self.timeout_s} s", started, now
                    )
                )
            else:
                continue
            del self._futures[tid]
        return out

    @property
    def running(self) -> int:
        return len(self._futures)

    def close(self) -> None:
        for fut, _, _ in self._futures.values():
            fut.cancel()
        self._futures.clear()
        self._client.close()  # type: ignore[no-untyped-call]
        if self._cluster is not None:
            self._cluster.close()


def make_executor(
    kind: str,
    objective: Objective,
    workers: int,
    timeout_s: float | None = None,
    address: str | None = None,
) -> Executor:
    """Build the executor named ``kind`` (``inline``, ``local`` or ``dask``).

    >>> ex = make_executor("inline", lambda config: config["x"] + 1.0, workers=1)
    >>> ex.submit(0, {"x": 1.0}, None)
    >>> [(o.trial_id, o.status, o.value) for o in ex.poll(1.0)]
    [(0, 'ok', 2.0)]
    """
    if kind == "inline":
        return InlineExecutor(objective)
    if kind == "local":
        return ProcessExecutor(objective, timeout_s)
    if kind == "dask":
        return DaskExecutor(objective, workers, address, timeout_s)
    raise ValueError(f"executor must be 'inline', 'local' or 'dask', got {kind!r}")
