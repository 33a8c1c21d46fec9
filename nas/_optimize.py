"""``optimize`` and ``resume``: the loop that asks, runs, journals and tells."""

from __future__ import annotations

import importlib
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from nas._errors import SearchFailedError
from nas._executors import Executor, Outcome, make_executor
from nas._journal import FORMAT, JournalWriter, read_journal
from nas._objectives import SYNTHETIC, Synthetic
from nas._registry import make_strategy
from nas._space import Config, Space, strip_meta
from nas._strategy import Strategy
from nas._trial import (
    FAILED,
    INFEASIBLE,
    OK,
    PENDING,
    TIMEOUT,
    Result,
    Trial,
    apply_result_event,
    nonfinite_reason,
    result_event,
    summarize,
)

__all__ = ["load_objective", "optimize", "resume"]

Objective = Callable[..., Any]

# Note [Ordered results]
# By default a result is told to the strategy as soon as it arrives and a free
# worker gets a new suggestion at once: with workers > 1 the order of results,
# and so every later suggestion, depends on which trial finishes first, so two
# runs with one seed differ. ``ordered=True`` (``--ordered``) makes the search a
# function of the seed alone: results are told in trial-id order (a later one
# waits for the earlier ones), and a slot is refilled only when its result is
# told, so suggest/observe calls come in the same sequence every run. The price:
# a worker idles while an earlier, slower trial is still running. Timeouts and
# retries still depend on the clock.
#
# Resume must replay the strategy's calls in the live order, and the journal's
# line order is not that order: a result is written when it *arrives* (so a
# crash never loses a finished trial), but told only when every earlier trial
# was. Live, a result that unblocks k told trials is followed by k pairs
# (observe t, suggest 1), so the journal reads ``result, suggest, suggest``
# while the calls were ``observe, suggest, observe, suggest``. Replaying each
# result's observes at once (as the first version did) gave ``observe, observe,
# suggest, suggest``, and the resumed search diverged whenever results had
# arrived out of order before the cut (about half the test runs). So replay
# (``_rebuild``) defers those observes: each one is made just before the next
# ``suggest`` line (the one it refilled), and any left when a non-suggest line
# comes were told live without a new suggestion (the budget was spent), so
# they are made then. Observes still owed at the end of the journal (the crash
# came between the two) are made by the resumed run, each followed by its
# suggestion, as the live run would have.
_POLL_S = 0.5  # longest single wait for results; short enough to notice deadlines


def load_objective(spec: str, dim: int | None = None) -> Any:
    """A synthetic function name (needs ``dim``) or ``"module:attribute"``.

    >>> load_objective("levy", 4)
    synthetic('levy', 4)
    """
    if spec in SYNTHETIC:
        if dim is None:
            raise ValueError(f"objective {spec!r} needs a dimension (dim)")
        return Synthetic(spec, dim)
    if ":" not in spec:
        raise ValueError(
            f"objective {spec!r}: use a name from {sorted(SYNTHETIC)} or 'module:attribute'"
        )
    mod, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(mod)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot load {spec!r}: {err}") from None
    return obj


class _Runner:
    def __init__(
        self,
        objective: Objective,
        strategy: Strategy,
        budget: int,
        workers: int,
        executor: str,
        address: str | None,
        timeout_s: float | None,
        retries: int,
        journal: JournalWriter | None,
        progress: bool,
        time_budget_s: float | None = None,
        resource_budget: float | None = None,
        ordered: bool = False,
    ) -> None:
        self.objective = objective
        self.strategy = strategy
        self.budget = budget
        self.workers = workers
        self.executor_kind = executor
        self.address = address
        self.timeout_s = timeout_s
        self.retries = retries
        self.journal = journal
        self.progress = progress
        self.time_budget_s = time_budget_s
        self.resource_budget = resource_budget
        self.ordered = ordered
        self.told: set[int] = set()  # trials whose outcome the strategy was told
        self.owed: list[int] = []  # replay only: observes deferred (Note [Ordered results])
        self._finished: set[int] = set()  # trials with a final outcome
        self._deadline: float | None = None  # time.monotonic() of the time budget
        self.warm_queue: list[Config] = []  # warm-start configs not yet run
        self.trials: dict[int, Trial] = {}
        self.queue: list[int] = []  # trials to (re)start before asking for new ones
        self.suggestions: dict[int, Config] = {}  # trial id -> config with scheduler metadata

    def _log(self, event: dict[str, Any]) -> None:
        if self.journal is not None:
            self.journal.write(event)

    def _submit(self, ex: Executor, trial: Trial) -> None:
        trial.attempts += 1
        rule = self.strategy.prune_rule(self.suggestions[trial.id])  # Note [Intermediate reports]
        ex.submit(trial.id, trial.config, trial.fidelity, rule)

    def run(self) -> None:
        ex = make_executor(
            self.executor_kind, self.objective, self.workers, self.timeout_s, self.address
        )
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(
                total=self.budget, initial=sum(t.status != PENDING for t in self.trials.values())
            )
        if self.time_budget_s is not None:
            self._deadline = time.monotonic() + self.time_budget_s
        try:
            if self.ordered:  # observes a replay left owed (Note [Ordered results])
                self.owed = []
                self._tell_ready(ex)
            while True:
                while self.queue and ex.running < self.workers:
                    self._submit(ex, self.trials[self.queue.pop(0)])
                # Note [Ordered results]: a slot frees only when its result is told
                busy = len(self.trials) - len(self.told) if self.ordered else ex.running
                free = self.workers - busy
                want = min(free, self.budget - len(self.trials))
                if want > 0 and self._may_ask():
                    self._ask(ex, want)
                if ex.running == 0 and not self.queue:
                    break
                for outcome in ex.poll(_POLL_S):
                    if self._handle(ex, outcome) and bar is not None:
                        bar.update(1)
        finally:
            ex.close()
            if bar is not None:
                bar.close()

    def _may_ask(self) -> bool:
        """Whether budget, time and resource allow one more trial."""
        if len(self.trials) >= self.budget:
            return False
        if self._deadline is not None and time.monotonic() >= self._deadline:
            return False  # out of time: no new trials, running ones finish
        return self.resource_budget is None or self.resource_spent < self.resource_budget

    @property
    def resource_spent(self) -> float:
        """Resource units of every trial so far (a pruned one: up to where it stopped)."""
        return float(sum(t.reached_fidelity or 0.0 for t in self.trials.values()))

    def _ask(self, ex: Executor, n: int) -> None:
        warm = self.warm_queue[:n]  # warm-start configs run first, as given
        self.warm_queue = self.warm_queue[n:]
        configs = [dict(c) for c in warm] if warm else self.strategy.suggest(n)
        now = time.time()
        entries: list[dict[str, Any]] = []
        for cfg in configs:
            tid = len(self.trials)
            fid = cfg.get("_fidelity")
            trial = Trial(
                tid, strip_meta(cfg), None if fid is None else float(fid), suggested_at=now
            )
            self.suggestions[tid] = cfg
            self.trials[tid] = trial
            entries.append({"id": tid, "config": cfg})
        self._log({"event": "suggest", "trials": entries, "time": now, "warm": bool(warm)})
        for e in entries:
            self._submit(ex, self.trials[e["id"]])

    def _handle(self, ex: Executor, out: Outcome) -> bool:
        trial = self.trials[out.trial_id]
        trial.started_at, trial.finished_at = out.started_at, out.finished_at
        trial.metrics = out.metrics
        bad_value = None if out.value is None else nonfinite_reason(out.value)
        if out.status == "ok" and bad_value is not None:
            # NaN / inf: a failed trial, not retried (the objective answered, and
            # would most likely answer the same again); the value is kept.
            trial.status, trial.value, trial.error = FAILED, out.value, bad_value
        elif out.status == "ok":
            trial.status, trial.value, trial.error = OK, out.value, None
        elif out.status == "infeasible":  # a verdict on the config: never retried
            trial.status, trial.value, trial.error = INFEASIBLE, None, out.error
        else:
            trial.error = out.error
            if trial.attempts <= self.retries:
                self._log(
                    {
                        "event": "retry",
                        "id": trial.id,
                        "attempt": trial.attempts,
                        "error": out.error,
                    }
                )
                self.queue.append(trial.id)
                return False
            trial.status = TIMEOUT if out.status == "timeout" else FAILED
        self._log(result_event(trial))
        self.tell(trial.id, ex)
        return True

    def tell(self, tid: int, ex: Executor | None = None) -> None:
        """Tell the strategy a final outcome; in ordered mode, in trial-id order.

        In ordered mode each told result is followed at once by the suggestion
        that refills its slot (``ex`` given: not while replaying a journal).
        """
        if not self.ordered:
            self._observe(tid)
            return
        self._finished.add(tid)
        if ex is None:  # replay: the observes wait for their suggest lines
            owed = set(self.owed)
            for nxt in sorted(set(self.trials) - self.told):
                if nxt not in self._finished:
                    break
                if nxt not in owed:
                    self.owed.append(nxt)
            return
        self._tell_ready(ex)

    def _tell_ready(self, ex: Executor) -> None:
        """Ordered mode: tell every finished trial next in id order, refilling each slot."""
        for nxt in sorted(set(self.trials) - self.told):
            if nxt not in self._finished:
                break
            self._observe(nxt)
            if self._may_ask():
                self._ask(ex, 1)

    def pay_owed(self, all_of_them: bool) -> None:
        """Replay: make the first (or every) deferred observe (Note [Ordered results])."""
        while self.owed:
            self._observe(self.owed.pop(0))
            if not all_of_them:
                return

    def _observe(self, tid: int) -> None:
        t = self.trials[tid]
        if t.status == OK and t.metrics is not None and "rungs" in t.metrics:
            self.strategy.observe_reports(self.suggestions[tid], t.metrics)
        self.strategy.observe([(self.suggestions[tid], t.value if t.status == OK else None)])
        self.told.add(tid)

    def result(self, journal: str | None, mismatches: int) -> Result:
        """The search's ``Result``; raises ``SearchFailedError`` if every trial failed."""
        history = [self.trials[i] for i in sorted(self.trials)]
        best_config, best_value = summarize(history, self.strategy.maximize)
        res = Result(
            best_config,
            best_value,
            history,
            self.strategy.maximize,
            self.strategy.name,
            journal,
            mismatches,
        )
        if history and best_value is None:
            first = next((t for t in history if t.error), history[0])
            n_inf = sum(t.status == INFEASIBLE for t in history)
            what = f"failed or were infeasible ({n_inf} infeasible)" if n_inf else "failed"
            raise SearchFailedError(
                f"all {len(history)} trials {what}; the first (trial {first.id}) with: "
                f"{first.error or first.status}",
                res,
            )
        return res


def _warm_start(
    warm: Sequence[Mapping[str, Any]] | str | os.PathLike[str] | None,
    strat: Strategy,
    space: Space,
) -> tuple[list[Config], list[dict[str, Any]]]:
    """``(configs to run first, results to tell)`` of a ``warm_start`` argument."""
    if warm is None:
        return [], []
    if getattr(strat, "to_top", None) is not None:
        raise ValueError(f"warm_start does not apply to a scheduler ({strat.name!r})")
    if isinstance(warm, (str, os.PathLike)):
        trials: dict[int, Config] = {}
        results: list[dict[str, Any]] = []
        for ev in read_journal(warm):
            if ev["event"] == "suggest":
                trials.update({e["id"]: strip_meta(e["config"]) for e in ev["trials"]})
            elif ev["event"] == "result" and ev["status"] == OK:
                cfg = trials[ev["id"]]
                if not space.contains(cfg):
                    raise ValueError(f"warm_start {warm}: trial {ev['id']} is not in the space")
                results.append({"config": cfg, "value": ev["value"]})
            elif ev["event"] == "warm":
                results.extend(ev["results"])
        return [], results
    configs = [dict(c) for c in warm]
    for c in configs:
        if not space.contains(c):
            raise ValueError(f"warm_start config {c!r} is not a valid member of the space")
    return configs, []


def _check_fidelity_budget(strat: Strategy, budget: int, resource_budget: float | None) -> None:
    """Reject a resource budget without a scheduler; warn when the top fidelity is out of reach."""
    to_top = getattr(strat, "to_top", None)
    if to_top is None:
        if resource_budget is not None:
            raise ValueError(
                f"resource_budget needs a scheduler strategy (hyperband, asha), not {strat.name!r}"
            )
        return
    trials, units = to_top()
    top = getattr(strat, "max_fidelity", None)
    if budget < trials:
        warnings.warn(
            f"{strat.name}: a budget of {budget} trials cannot reach the top fidelity {top} "
            f"(that takes at least {trials} trials); raise budget or give resource_budget",
            UserWarning,
            stacklevel=3,
        )
    elif resource_budget is not None and resource_budget < units:
        warnings.warn(
            f"{strat.name}: a resource budget of {resource_budget} cannot reach the top "
            f"fidelity {top} (that takes at least {units} units)",
            UserWarning,
            stacklevel=3,
        )


def _check_common(
    budget: int,
    workers: int,
    retries: int,
    timeout_s: float | None,
    time_budget_s: float | None = None,
    resource_budget: float | None = None,
) -> None:
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be a positive int, got {budget!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an int >= 0, got {retries!r}")
    if timeout_s is not None and not timeout_s > 0:
        raise ValueError(f"timeout_s must be positive or None, got {timeout_s!r}")
    if time_budget_s is not None and not time_budget_s > 0:
        raise ValueError(f"time_budget_s must be positive or None, got {time_budget_s!r}")
    if resource_budget is not None and not resource_budget > 0:
        raise ValueError(f"resource_budget must be positive or None, got {resource_budget!r}")


def optimize(
    objective: Objective,
    space: Space,
    strategy: str | Strategy = "lamcts",
    budget: int = 100,
    seed: int | None = 0,
    maximize: bool = True,
    workers: int = 1,
    executor: str = "local",
    *,
    strategy_options: Mapping[str, Any] | None = None,
    journal: str | os.PathLike[str] | None = None,
    scheduler: str | None = None,
    timeout_s: float | None = None,
    retries: int = 1,
    progress: bool = False,
    objective_spec: str | None = None,
    time_budget_s: float | None = None,
    resource_budget: float | None = None,
    ordered: bool = False,
    warm_start: Sequence[Mapping[str, Any]] | str | os.PathLike[str] | None = None,
) -> Result:
    """Search ``space`` for the best value of ``objective``.

    Args:
        objective: ``objective(config) -> float``; a multi-fidelity objective is
            called ``objective(config, fidelity)`` when the strategy is a scheduler.
        space: the ``nas.Space`` to search.
        strategy: a name from ``nas.STRATEGIES`` or a ``Strategy`` instance.
        budget: number of trials (at any fidelity).
        seed: seeds the strategy (same seed, same suggestions).
        maximize: whether larger values are better.
        workers: trials run at once (also the batch size of ``suggest``).
        executor: ``"local"`` (one process per trial), ``"inline"`` or ``"dask"``.
        strategy_options: keyword options for a strategy given by name.
        journal: path of an append-only JSON-lines journal (see ``nas.resume``).
        scheduler: Dask scheduler address (``executor="dask"``); None starts a
            ``LocalCluster`` of ``workers`` processes.
        timeout_s: per-trial wall-clock limit (``local`` and ``dask``).
        retries: extra attempts for a trial that raised, died or timed out.
        progress: show a tqdm progress bar.
        objective_spec: how ``nas resume`` can reload the objective
            (``"module:attribute"`` or a synthetic name); stored in the journal.
        time_budget_s: wall-clock limit of the search: no new trial starts after
            it (running ones finish and are recorded).
        resource_budget: for a scheduler (``hyperband``, ``asha``), the total
            resource in fidelity units (for example epochs) over all trials; no
            new trials are asked for once it is spent (the last batch may pass
            it). ``budget`` still caps the number of trials.
        ordered: tell the strategy results in suggestion order, and start a new
            trial only when a result is told, so that with ``workers > 1`` a fixed
            seed gives the same search every run (see Note [Ordered results]).
        warm_start: configs to evaluate first, before the strategy's own (they
            are trials of this search and count against ``budget``), or the
            path of another journal whose successful results the strategy is
            told before it suggests anything (not re-run, not counted). Not
            for schedulers.

    >>> import nas
    >>> f = nas.synthetic("sphere", 2)
    >>> res = nas.optimize(f, f.space, "random", budget=20, seed=0, maximize=False,
    ...                    executor="inline")
    >>> len(res.history), res.best_value < 25
    (20, True)
    """
    _check_common(budget, workers, retries, timeout_s, time_budget_s, resource_budget)
    if not callable(objective):
        raise ValueError(f"objective must be callable, got {objective!r}")
    if isinstance(strategy, Strategy):
        if strategy_options:
            raise ValueError("strategy_options only apply to a strategy given by name")
        strat, name, options = strategy, strategy.name, None
        maximize = strategy.maximize
    else:
        options = dict(strategy_options or {})
        strat = make_strategy(strategy, space, seed, maximize, **options)
        name = strategy
    make_executor_check(executor)
    warm_configs, warm_results = _warm_start(warm_start, strat, space)
    _check_fidelity_budget(strat, budget, resource_budget)
    writer = None
    if journal is not None:
        writer = JournalWriter(journal, create=True)  # locked: see Note [Journal writer]
        writer.write(
            {
                "event": "start",
                "format": FORMAT,
                "time": time.time(),
                "strategy": name,
                "strategy_options": options,
                "seed": seed,
                "maximize": maximize,
                "budget": budget,
                "workers": workers,
                "executor": executor,
                "scheduler": scheduler,
                "timeout_s": timeout_s,
                "retries": retries,
                "space": space.to_json() if space.serializable() else None,
                "objective": objective_spec or _spec_of(objective),
                "time_budget_s": time_budget_s,
                "resource_budget": resource_budget,
                "ordered": ordered,
            }
        )
    runner = _Runner(
        objective,
        strat,
        budget,
        workers,
        executor,
        scheduler,
        timeout_s,
        retries,
        writer,
        progress,
        time_budget_s,
        resource_budget,
        ordered,
    )
    runner.warm_queue = warm_configs
    if warm_results:
        runner._log({"event": "warm", "results": warm_results, "source": str(warm_start)})
        strat.observe([(r["config"], r["value"]) for r in warm_results])
    try:
        runner.run()
    finally:
        if writer is not None:
            writer.close()
    return runner.result(str(journal) if journal is not None else None, 0)


def make_executor_check(kind: str) -> None:
    """Reject an unknown executor name before anything starts."""
    if kind not in ("inline", "local", "dask"):
        raise ValueError(f"executor must be 'inline', 'local' or 'dask', got {kind!r}")


def _spec_of(objective: Any) -> str | None:
    if isinstance(objective, Synthetic):
        return objective.name
    return None


def resume(
    journal: str | os.PathLike[str],
    objective: Objective | None = None,
    space: Space | None = None,
    *,
    budget: int | None = None,
    workers: int | None = None,
    executor: str | None = None,
    scheduler: str | None = None,
    progress: bool = False,
    strategy: Strategy | None = None,
    time_budget_s: float | None = None,
) -> Result:
    """Continue a journaled search after a crash (or to extend its budget).

    The strategy is rebuilt by replaying every ``suggest`` and ``result`` of the
    journal in order; trials suggested but never finished run again; finished
    ones are never re-run. ``objective`` and ``space`` default to what the
    journal recorded (a synthetic function or ``module:attribute``, a
    constraint-free space). Pass ``strategy`` (a fresh instance built like the
    original) when the search was started with a ``Strategy`` instance.
    ``time_budget_s`` limits this session (from the resume on); the resource
    budget is the journal's.

    >>> import nas, tempfile, os
    >>> f = nas.synthetic("sphere", 2)
    >>> path = os.path.join(tempfile.mkdtemp(), "run.jsonl")
    >>> _ = nas.optimize(f, f.space, "random", budget=5, maximize=False, executor="inline",
    ...                  journal=path)
    >>> nas.resume(path, budget=8, executor="inline").n_finished
    8
    """
    # Lock (and cut a torn last line) before reading, so that two resumes of one
    # journal cannot both replay it (see Note [Journal writer]).
    writer = JournalWriter(journal, create=False)
    try:
        runner, mismatches = _rebuild(
            writer,
            journal,
            objective,
            space,
            strategy,
            budget,
            workers,
            executor,
            scheduler,
            progress,
            time_budget_s,
        )
        runner.run()
    finally:
        writer.close()
    return runner.result(str(journal), mismatches)


def _rebuild(
    writer: JournalWriter,
    journal: str | os.PathLike[str],
    objective: Objective | None,
    space: Space | None,
    strategy: Strategy | None,
    budget: int | None,
    workers: int | None,
    executor: str | None,
    scheduler: str | None,
    progress: bool,
    time_budget_s: float | None,
) -> tuple[_Runner, int]:
    """Replay a locked journal into a runner ready to continue (see ``resume``)."""
    events = read_journal(journal)
    head = events[0]
    if objective is None:
        if not head.get("objective"):
            raise ValueError(f"journal {journal} has no objective spec; pass objective=")
        dim = len(head["space"].get("params", ())) if head.get("space") else None
        objective = load_objective(head["objective"], dim)
    if space is None:
        if head.get("space") is None:
            raise ValueError(f"journal {journal} has no serializable space; pass space=")
        space = Space.from_json(head["space"])
    if strategy is None:
        strat = make_strategy(
            head["strategy"],
            space,
            head["seed"],
            head["maximize"],
            **(head["strategy_options"] or {}),
        )
    else:
        strat = strategy
    budget = head["budget"] if budget is None else budget
    workers = head["workers"] if workers is None else workers
    executor = head["executor"] if executor is None else executor
    scheduler = head.get("scheduler") if scheduler is None else scheduler
    resource_budget = head.get("resource_budget")
    _check_common(budget, workers, head["retries"], head["timeout_s"], time_budget_s)
    make_executor_check(executor)
    _check_fidelity_budget(strat, budget, resource_budget)

    runner = _Runner(
        objective,
        strat,
        budget,
        workers,
        executor,
        scheduler,
        head["timeout_s"],
        head["retries"],
        None,
        progress,
        time_budget_s,
        resource_budget,
        bool(head.get("ordered", False)),
    )
    mismatches = 0
    for ev in events[1:]:
        kind = ev.get("event")
        if kind == "warm":
            strat.observe([(r["config"], r["value"]) for r in ev["results"]])
        if kind == "suggest":
            runner.pay_owed(all_of_them=False)  # the observe this suggestion refilled
        elif kind in ("result", "retry"):
            runner.pay_owed(all_of_them=True)  # told live without a new suggestion
        if kind == "suggest":
            cfgs = [e["config"] for e in ev["trials"]]
            if not ev.get("warm"):
                mismatches += not strat.replay(cfgs)
            for e in ev["trials"]:
                cfg = e["config"]
                fid = cfg.get("_fidelity")
                t = Trial(
                    e["id"],
                    strip_meta(cfg),
                    None if fid is None else float(fid),
                    suggested_at=ev["time"],
                )
                runner.suggestions[e["id"]] = cfg
                runner.trials[e["id"]] = t
        elif kind == "result":
            apply_result_event(runner.trials[ev["id"]], ev)
            runner.tell(ev["id"])
    runner.queue = [tid for tid in sorted(runner.trials) if runner.trials[tid].status == PENDING]
    for tid in runner.queue:
        runner.trials[tid].attempts = 0
    runner.journal = writer
    writer.write(
        {
            "event": "resume",
            "time": time.time(),
            "budget": budget,
            "replay_mismatches": mismatches,
            "rerun": list(runner.queue),
            "repaired_bytes": writer.repaired_bytes,
        }
    )
    return runner, mismatches
