"""The built-in pipelines, one module each: its options next to its code, as an app's own pipelines are."""

from . import compare, create_release, info, init, sweep, tensorboard, test, test_sample, train

BUILT_IN = (init.PIPELINE, train.PIPELINE, test.PIPELINE, test_sample.PIPELINE, info.PIPELINE,
            create_release.PIPELINE, tensorboard.PIPELINE, sweep.PIPELINE, compare.PIPELINE)
