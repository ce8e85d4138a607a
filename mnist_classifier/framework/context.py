"""What a pipeline's ``run`` receives: the parsed arguments, the app, the logger, and the objects made from them
(the experiment, the runtime, the app's ``Data`` and ``Runner``) the same way for every pipeline."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .contracts import check_loaders
from .distributed import Group, group_from_environment
from .errors import UserError
from .experiment import Experiment
from .logs import attach_log_file

if TYPE_CHECKING:
    from .app import App
    from .configuration import Configuration
    from .data import Data
    from .runner import Runner
    from .runtime import Runtime


@dataclass
class Context:
    args: argparse.Namespace
    app: App
    logger: logging.Logger
    _runtime: Runtime | None = field(default=None, repr=False)

    def report(self, line: str) -> None:
        """A result the user asked for: logged, and printed even without ``--verbose``."""
        self.logger.info(line)
        self.show(line)

    def show(self, line: str) -> None:
        """Print a line that was already logged, unless ``--verbose`` has printed it (or another process will)."""
        if not self.args.verbose and self.group.is_main:
            print(line, flush=True)

    @property
    def group(self) -> Group:
        """This process among those torchrun started (a single process without torchrun)."""
        return self._runtime.group if self._runtime is not None else group_from_environment()

    @property
    def data_path(self) -> Path:
        return Path(self.args.data_path)

    @property
    def runtime(self) -> Runtime:
        """The process's device, precision and compilation, resolved (and checked) once, on first use, from the
        pipeline's ``--device``, ``--precision``, ``--compile`` and ``--no-progress`` (CPU where it has none)."""
        if self._runtime is None:
            from .progress import wanted
            from .runtime import make_runtime

            args = self.args
            device = args.device if hasattr(args, "device") else "cpu"  # None: CUDA when available
            self._runtime = make_runtime(device, getattr(args, "precision", "fp32"), getattr(args, "compile", False),
                                         wanted(getattr(args, "no_progress", True)), group_from_environment(),
                                         getattr(args, "dist_timeout", 600))
        return self._runtime

    @contextmanager
    def lock(self, experiment: Experiment) -> Iterator[None]:
        """Hold the experiment's lock for this pipeline (one writer at a time). In a group only the first process
        takes it, and the others learn whether it could: they all go on, or all stop with its error."""
        from .strategy import make_strategy

        held = None

        def take() -> str | None:
            nonlocal held
            held = experiment.lock(self.args.pipeline)
            try:
                held.__enter__()
            except UserError as error:
                held = None
                return str(error)
            return None

        refused = make_strategy(self.runtime).decide(take)
        if refused is not None:
            raise UserError(refused)
        try:
            yield
        finally:
            if held is not None:
                held.__exit__(None, None, None)

    def experiment(self) -> Experiment:
        """The experiment ``--experiment-name`` names, loaded (a ``UserError`` when it does not exist)."""
        experiment = Experiment(self.args.experiments_path, self.args.experiment_name)
        experiment.load()
        return experiment

    def data(self, configuration: Configuration, experiment: Experiment | None = None,
             num_workers: int | None = None, splits: tuple[str, ...] = ()) -> Data:
        """The app's ``Data``: its persisted state restored from ``experiment``, and its datasets and loaders
        built when ``num_workers`` is given, with a loader for each of ``splits``."""
        data = self.app.make_data()
        data.init(configuration, self.logger, self.runtime if experiment is not None else None)
        if experiment is not None:
            data.load(experiment.load_data_state())
        if num_workers is not None:
            data.load_datasets(self.data_path)
            data.load_loaders(self.data_path, num_workers)
            check_loaders(data, splits, self.args.pipeline, self.runtime.group.world_size)
        return data

    def runner(self, experiment: Experiment, data: Data, training: bool) -> Runner:
        """The app's ``Runner``, built on this runtime, judged by the app's metric."""
        runner = self.app.make_runner()
        runner.init(experiment, data, self.logger, self.runtime, self.app.judged_by, training=training)
        return runner

    @contextmanager
    def logging_into(self, experiment: Experiment) -> Iterator[None]:
        """Write what was logged to ``verbose.log`` once the block ends, unless it ends on bad input: a command
        refused for bad input leaves the experiment folder as it was. (Only the first process of a group writes.)"""
        try:
            yield
        except UserError:
            raise
        except BaseException:
            attach_log_file(self.logger, experiment.log_file)
            raise
        attach_log_file(self.logger, experiment.log_file)
