"""A clean console: TensorFlow's start-up noise hidden unless --verbose, logging set up once."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import warnings


@contextlib.contextmanager
def _stderr_silenced(active: bool):
    # TensorFlow's C++ start-up lines (oneDNN, CUDA probing) go straight to file descriptor 2
    # and ignore TF_CPP_MIN_LOG_LEVEL in current releases: only redirecting the descriptor hides them.
    if not active:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def start_tensorflow(verbose: bool, *modules: str, first_operation: bool = True) -> None:
    """Import TensorFlow (and ``modules``) quietly unless ``verbose``; route our logs to stderr.

    ``first_operation=False`` leaves TensorFlow's first operation to :func:`run_first_operation`: a
    multi-worker strategy must be made before any operation runs.
    """
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("pipelines").setLevel(logging.DEBUG if verbose else logging.INFO)
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        warnings.filterwarnings("ignore")
    with _stderr_silenced(not verbose):
        import tensorflow as tf

        if first_operation:
            tf.constant(0)  # first op: device discovery prints here, inside the silenced block
        for module in modules:
            importlib.import_module(module)
    if not verbose:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
        logging.getLogger("tensorflow").setLevel(logging.ERROR)


def run_first_operation(verbose: bool, operation):
    """``operation()``, TensorFlow's first, where device discovery (and a cluster's start-up) print, quietly
    unless ``verbose``."""
    with _stderr_silenced(not verbose):
        return operation()
