"""MNIST digit classifier built on a Skeltorch-style experiment framework (``mnist_classifier.framework``)."""

__version__ = "0.1.0"
