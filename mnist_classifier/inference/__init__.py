"""Using a model: ``load_release``, the model registry, reading real pictures and calibrated confidence. Nothing
here imports the training side, so a release loads with this package alone (a test checks it)."""
