"""A second application on the framework, written as a new user would: regression of a noisy function of four
numbers, with dict batches (``{"x": [N, 4], "y": [N]}``), judged by its validation loss (lower is better).

It is the minimal example the README's framework guide points to: ``data.py`` (the data), ``runner.py`` (the
model and its hooks), ``__main__.py`` (the app's declaration and its own ``predict`` pipeline) and its config.
Run it from ``tests/``: ``python -m regression_app --experiment-name r init --config-path
regression_app/config.json --config-schema-file regression_app/config.schema.json``.
"""
