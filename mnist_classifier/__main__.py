"""``python -m mnist_classifier`` and the ``mnist-classifier`` command: the framework's CLI with the MNIST app.

The app's classes are imported only by the pipelines that use them, so ``--help`` and ``info`` need no torch.
"""

import sys

from .framework import App
from .predict import PREDICT


def make_data():
    from .data import MNISTClassifierData

    return MNISTClassifierData()


def make_runner():
    from .runner import MNISTClassifierRunner

    return MNISTClassifierRunner()


def main(argv: list[str] | None = None) -> int:
    prog = "python -m mnist_classifier" if sys.argv[0].endswith("__main__.py") else "mnist-classifier"
    return App(make_data, make_runner, prog=prog, extra_pipelines=[PREDICT]).run(argv)


if __name__ == "__main__":
    sys.exit(main())
