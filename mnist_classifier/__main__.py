"""``python -m mnist_classifier`` and the ``mnist-classifier`` command: the framework's CLI with the MNIST app.

The app's classes are imported only by the pipelines that use them, so ``--help`` and ``info`` need no torch.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from .framework import App, Metric
from .pipelines.export import EXPORT
from .pipelines.predict import PREDICT
from .pipelines.serve import SERVE

if TYPE_CHECKING:
    from .training.data import MNISTClassifierData
    from .training.runner import MNISTClassifierRunner as Runner


def make_data() -> MNISTClassifierData:
    from .training.data import MNISTClassifierData

    return MNISTClassifierData()


def make_runner() -> Runner:
    from .training.runner import MNISTClassifierRunner

    return MNISTClassifierRunner()


def make_app(make_runner: Callable[[], Runner] = make_runner) -> App:
    """The MNIST classifier, judged by its validation accuracy, with ``predict``, ``serve`` and ``export``
    besides the built-in pipelines (``make_runner``: another runner class, as the benchmark's instrumented one)."""
    prog = "python -m mnist_classifier" if sys.argv[0].endswith("__main__.py") else "mnist-classifier"
    return App("mnist_classifier", make_data, make_runner, judged_by=Metric("validation_accuracy", True),
               pipelines=[PREDICT, SERVE, EXPORT], prog=prog)


def main(argv: list[str] | None = None) -> int:
    return make_app().run(argv)


if __name__ == "__main__":
    sys.exit(main())
