"""A hyperparameter sweep on Optuna whose trials are experiments: the sweep's folder, its study, and the worker
that runs trials until the sweep has as many as it was asked for.

``<experiments>/<S>/`` holds ``sweep.json`` (the base configuration and its schema, the search space, the
objective, the seed, the pruner, the number of trials) and the study's storage, Optuna's journal file
(``journal.log``: no server, no SQLite locking) unless ``--storage`` names a database. Trial N is the experiment
``<S>.N`` beside it, with ``trial.json`` (its sweep, number, parameters and state), so every pipeline works on it
and ``compare`` reads JSON only.

Nothing is lost: a trial interrupted by a signal saves its state as ``train`` does and is marked for a retry; a
trial left RUNNING by a worker that died is recognised because no worker holds its lock in ``<S>/locks/`` (the
kernel drops a dead process's lock) and, for a worker of another machine, its heartbeat there has stopped.
Either is retried with the same parameters (Optuna's ``RetryHeartbeatStaleTrialCallback``), in the same
experiment, which resumes from its newest checkpoint. The sampler is seeded by (seed, the trial's index), so
one worker's sweep, interrupted or not, draws the same parameters in the same order.

The workers of one machine take turns (``<S>/locks/turn.lock``) to recover, count and take a trial with its
lock, so none sees another's trial between asked and locked, and two never draw from the same seed; only their
trials run at once. Workers of several machines count and ask apart: see ``take_trial``.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import search_space
from .errors import HookError, Interrupted, UserError
from .experiment import Experiment, check_name
from .lock import ExperimentLock, turn
from .metrics import Metric, best_epoch
from .storage import read_json, write_json

if TYPE_CHECKING:
    import optuna

    from .context import Context
    from .runner import Runner

FORMAT = 1
HEARTBEAT_SECONDS = 10  # how often a worker says it is running its trial
HEARTBEAT_GRACE = 60  # a trial of another machine whose heartbeat is older than this is lost
PRUNERS = ("median", "hyperband", "none")
FINISHED, PRUNED, FAILED, RUNNING, INTERRUPTED = "finished", "pruned", "failed", "running", "interrupted"


@dataclass
class Settings:
    """What ``sweep.json`` holds: everything the same command needs to continue the sweep."""

    config: dict[str, Any]
    schema: dict[str, Any]
    space: dict[str, Any]
    trials: int
    seed: int
    pruner: str
    max_epochs: int
    objective: dict[str, Any]  # {"metric": "validation_accuracy", "higher_is_better": true}
    storage: str | None = None
    format: int = FORMAT

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Settings:
        return cls(**{key: state[key] for key in cls.__dataclass_fields__ if key in state})


class Sweep:
    """The folder ``<experiments_path>/<name>/`` and the experiments of its trials."""

    def __init__(self, experiments_path: Path, name: str | None) -> None:
        self.name = check_name(name)
        self.experiments_path = Path(experiments_path)
        self.path = self.experiments_path / self.name
        self.settings_file = self.path / "sweep.json"
        self.journal = self.path / "journal.log"

    def exists(self) -> bool:
        return self.settings_file.is_file()

    def create(self, settings: Settings) -> None:
        if self.path.exists():
            raise UserError(f"'{self.name}' already exists in {self.experiments_path} and is not a sweep, choose "
                            "another name")
        self.path.mkdir(parents=True)
        write_json(self.settings_file, asdict(settings))

    def load(self) -> Settings:
        try:
            return Settings.from_dict(read_json(self.settings_file))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UserError(f"{self.settings_file} is missing or damaged ({type(error).__name__}), restore it or "
                            "start another sweep") from None

    def locks(self) -> Path:
        """``<S>/locks/``, made on first use: the trials' locks and heartbeats, and the turn."""
        (self.path / "locks").mkdir(exist_ok=True)
        return self.path / "locks"

    def trial_lock(self, index: int) -> ExperimentLock:
        """Held by the worker running trial ``index`` from the moment it has it, until it ends."""
        return ExperimentLock(self.locks() / f"{index}.lock", self.trial_name(index), "sweep")

    def turn(self) -> AbstractContextManager[None]:
        """Held by a worker of this machine while it recovers, counts and takes a trial (see the module)."""
        return turn(self.locks() / "turn.lock")

    def heartbeat_path(self, index: int) -> Path:
        return self.path / "locks" / f"{index}.heartbeat"

    def trial_name(self, number: int) -> str:
        return f"{self.name}.{number}"

    def trial_names(self) -> list[str]:
        """The experiments of this sweep's trials, by trial number."""
        found = []
        for path in self.experiments_path.glob(f"{self.name}.*"):
            suffix = path.name[len(self.name) + 1:]
            if suffix.isdigit() and (path / "trial.json").is_file():
                found.append((int(suffix), path.name))
        return [name for _, name in sorted(found)]

    def study(self, settings: Settings) -> optuna.Study:
        """The sweep's Optuna study, created on first use (``load_if_exists``)."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if settings.storage:
            storage: Any = settings.storage
        else:
            from optuna.storages import JournalStorage
            from optuna.storages.journal import JournalFileBackend

            storage = JournalStorage(JournalFileBackend(str(self.journal)))
        pruner = {"median": optuna.pruners.MedianPruner(), "hyperband": optuna.pruners.HyperbandPruner(),
                  "none": optuna.pruners.NopPruner()}[settings.pruner]
        direction = "maximize" if settings.objective["higher_is_better"] else "minimize"
        try:
            return optuna.create_study(study_name=self.name, storage=storage, direction=direction, pruner=pruner,
                                       load_if_exists=True)
        except Exception as error:  # a bad URL, a driver missing, no server: SQLAlchemy's errors, ImportError...
            if not settings.storage:
                raise
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise UserError(f"cannot open the sweep's storage ({reason}), check --storage") from None


def trial_index(trial: optuna.trial.FrozenTrial) -> int | None:
    """The trial's place in the sweep (``<S>.<index>``): given at its first attempt, kept by its retries, so the
    trials of a sweep are numbered 0, 1, 2... whatever was retried on the way."""
    index = trial.user_attrs.get("index")
    return int(index) if index is not None else None


def _is_first(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a trial is the first attempt at its index: not a retry, and not a surplus (see ``take_trial``)."""
    return "failed_trial" not in trial.system_attrs and not trial.user_attrs.get("surplus")


def counts_toward(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a trial ended for good: finished, pruned, or failed on its own (its ``reason`` says why); an
    interrupted or lost attempt is retried instead."""
    import optuna

    states = optuna.trial.TrialState
    return trial.state in (states.COMPLETE, states.PRUNED) or \
        (trial.state == states.FAIL and "reason" in trial.user_attrs)


def recover(study: optuna.Study, sweep: Sweep, logger: Any, since: datetime.datetime) -> None:
    """Fail every RUNNING trial that no worker holds (its worker died) and that began before this worker did
    (``since``: a trial just asked for is taken a moment later), then queue a retry, with the same parameters, of
    every trial whose latest attempt was interrupted or lost."""
    import warnings

    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        index, began = trial_index(trial), trial.datetime_start
        if (began is None or began < since) and (index is None or not _is_held(sweep, index)):
            # A worker tells the study how its trial ended before it lets the lock go: a free lock may also
            # mean the trial ended a moment ago, which skip_if_finished leaves as it is.
            told = study.tell(trial.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
            if told.state != optuna.trial.TrialState.FAIL:
                continue
            if index is None:
                logger.warning(f"a trial of sweep '{sweep.name}' was left by a worker that stopped before it began; "
                               "it is taken again")
            else:
                logger.warning(f"trial {index} of sweep '{sweep.name}' was left running by a worker that stopped; "
                               "it resumes from its newest checkpoint")
    # Each chain of attempts by its first trial's number, which every retry carries: not by index, which a trial
    # killed before it had one gets only at its retry.
    latest: dict[int, optuna.trial.FrozenTrial] = {}
    for trial in study.get_trials(deepcopy=False):  # in the order of their numbers
        latest[int(trial.system_attrs.get("failed_trial", trial.number))] = trial
    with warnings.catch_warnings():  # "experimental": it is the callback Optuna retries its own stale trials with
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback(inherit_intermediate_values=True)
    for trial in latest.values():
        if trial.state == optuna.trial.TrialState.FAIL and not {"reason", "surplus"} & trial.user_attrs.keys():
            retry(study, trial)


def _is_held(sweep: Sweep, index: int) -> bool:
    """Whether a worker is running trial ``index``: on this machine, it holds the trial's lock (the kernel
    releases a dead process's at once); on another, its heartbeat is younger than ``HEARTBEAT_GRACE`` seconds
    (a shared filesystem's locks may not reach across machines)."""
    lock = sweep.trial_lock(index)
    if lock.path.exists():
        try:
            with lock:
                pass
        except UserError:
            return True
    try:
        beat = read_json(sweep.heartbeat_path(index))
    except (OSError, ValueError):
        return False
    return beat.get("host") != socket.gethostname() and time.time() - float(beat.get("time", 0)) < HEARTBEAT_GRACE


@contextmanager
def holding(sweep: Sweep, index: int) -> Iterator[None]:
    """Hold trial ``index`` while the block runs: its lock, and a heartbeat written every ``HEARTBEAT_SECONDS``
    with this machine's name, for workers on other machines."""
    stop = threading.Event()

    def beat() -> None:
        write_json(sweep.heartbeat_path(index), {"host": socket.gethostname(), "pid": os.getpid(),
                                                 "time": time.time()})

    def keep_beating() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            beat()

    with sweep.trial_lock(index):
        beat()  # the first before the trial starts
        beating = threading.Thread(target=keep_beating, name=f"heartbeat of trial {index}", daemon=True)
        beating.start()
        try:
            yield
        finally:
            stop.set()
            beating.join()


def run_worker(ctx: Context, sweep: Sweep, settings: Settings) -> None:
    """Run trials until the sweep has ``settings.trials`` that ended for good, counting those other workers are
    running."""
    import optuna

    study = sweep.study(settings)
    dimensions = search_space.parse(settings.space, str(sweep.settings_file))
    since = datetime.datetime.now() - datetime.timedelta(seconds=1)  # Optuna's clock: local time
    while True:
        with ExitStack() as held:
            with sweep.turn():
                recover(study, sweep, ctx.logger, since)
                trials = study.get_trials(deepcopy=False)
                states = [t.state for t in trials]
                waiting = states.count(optuna.trial.TrialState.WAITING)
                running = states.count(optuna.trial.TrialState.RUNNING)
                if not waiting and sum(counts_toward(t) for t in trials) + running >= settings.trials:
                    return
                taken = take_trial(study, settings)
                if taken is None:  # a worker of another machine took the last trial at the same moment
                    continue
                trial, index = taken
                held.enter_context(holding(sweep, index))
            params = {dimension.key: dimension.suggest(trial) for dimension in dimensions}
            run_trial(ctx, sweep, settings, study, trial, params, index)


def take_trial(study: optuna.Study, settings: Settings) -> tuple[optuna.Trial, int] | None:
    """Ask the study for the next trial, a retry waiting for a worker first, and give it its index.

    Workers of several machines look at the count and ask apart, so two may both see one trial missing and
    ask: the first attempt whose index would be ``settings.trials`` or more is a surplus, told FAIL with the
    user attribute ``surplus`` and ``None`` returned. A surplus is never run, counted, retried or given an
    index, so the sweep ends with exactly the trials asked for and a longer sweep later numbers on without a
    hole."""
    import optuna

    # Seeded by the index the next new trial gets when no other worker asks first, as with one worker.
    firsts = sum(_is_first(t) for t in study.get_trials(deepcopy=False))
    study.sampler = optuna.samplers.TPESampler(seed=(settings.seed * 1_000_003 + firsts) % 2**32)
    trial = study.ask()
    frozen = study.get_trials(deepcopy=False)
    index = trial_index(frozen[trial.number])  # a retry keeps its index
    if index is None:  # its first attempt's place among the first attempts: unique, whoever asked
        first = int(frozen[trial.number].system_attrs.get("failed_trial", trial.number))
        index = sum(_is_first(t) for t in frozen[:first])
        if index >= settings.trials:
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return None
        trial.set_user_attr("index", index)
    return trial, index


def tally(sweep: Sweep, settings: Settings) -> dict[str, int]:
    """How many of the sweep's trials ended for good, by state (``finished``, ``pruned``, ``failed``), over every
    worker's."""
    import optuna

    states = optuna.trial.TrialState
    ended = [trial.state for trial in sweep.study(settings).get_trials(deepcopy=False) if counts_toward(trial)]
    return {FINISHED: ended.count(states.COMPLETE), PRUNED: ended.count(states.PRUNED),
            FAILED: ended.count(states.FAIL)}


def run_trial(ctx: Context, sweep: Sweep, settings: Settings, study: optuna.Study, trial: optuna.Trial,
              params: dict[str, Any], number: int) -> None:
    """One trial in its experiment (created on its first attempt, resumed on a retry): report the judged metric
    after every epoch, stop when the pruner says so, and tell the study how it ended."""
    import optuna

    from .logs import attach_log_file, setup_logging
    from .pipelines.init import create_experiment
    from .pipelines.train import train_experiment

    experiment = Experiment(sweep.experiments_path, sweep.trial_name(number))
    metric = Metric(settings.objective["metric"], settings.objective["higher_is_better"])
    logger = setup_logging(f"{ctx.app.name}.{experiment.name}", ctx.args.verbose)
    trial_ctx = dataclasses.replace(ctx, logger=logger)  # the trial's log goes to its own verbose.log
    ctx.report(f"Trial {number} of sweep '{sweep.name}': " + ", ".join(f"{k}={v}" for k, v in params.items()))

    pruned = False

    def report(runner: Runner) -> bool:
        nonlocal pruned
        epoch, value = runner.counters["epoch"], runner.history[-1].get(metric.key)
        if value is not None:
            trial.report(float(value), epoch)
            pruned = trial.should_prune()
        return pruned

    try:
        if not experiment.config_file.exists():
            create_experiment(trial_ctx, experiment, settings.config, settings.schema,
                              search_space.overrides(params), settings.seed, f"sweep '{sweep.name}'")
            attach_log_file(logger, experiment.log_file)
        else:  # a retry: its experiment goes on from its newest checkpoint
            experiment.load()
        _write_trial(experiment, sweep, number, params, RUNNING)
        runner = train_experiment(trial_ctx, experiment, settings.max_epochs, after_epoch=report)
    except Interrupted:  # its state is saved: the next run retries it there (see ``recover``)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        _write_trial(experiment, sweep, number, params, INTERRUPTED)
        raise
    except (UserError, HookError) as error:
        trial.set_user_attr("reason", str(error))
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        _write_trial(experiment, sweep, number, params, FAILED, reason=str(error))
        ctx.report(f"Trial {number} failed: {error}")
        return
    best = best_epoch(runner.history, metric)
    value = next(entry[metric.key] for entry in runner.history if entry["epoch"] == best)
    if pruned:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        _write_trial(experiment, sweep, number, params, PRUNED)
        ctx.report(f"Trial {number} pruned after epoch {runner.counters['epoch']}")
        return
    study.tell(trial, float(value))
    _write_trial(experiment, sweep, number, params, FINISHED)
    ctx.report(f"Trial {number} finished: {metric.label} {value:.4f} at epoch {best}")


def _write_trial(experiment: Experiment, sweep: Sweep, number: int, params: dict[str, Any], state: str,
                 reason: str | None = None) -> None:
    """``trial.json``: what ``compare`` and ``info`` show of the trial; the folder exists once it is created."""
    if experiment.path.is_dir():
        write_json(experiment.path / "trial.json", {"sweep": sweep.name, "number": number, "params": params,
                                                     "state": state, **({"reason": reason} if reason else {})})


