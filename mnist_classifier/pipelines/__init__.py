"""The MNIST app's own pipelines, beside the framework's built-in ones: ``predict`` and ``serve``."""
