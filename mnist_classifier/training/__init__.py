"""Making a model: the MNIST app's ``Data`` and ``Runner``, its datasets and typed digits, augmentation, and what
a test measures and draws. Training imports inference (the model registry, reading pictures); never the reverse."""
