"""A tune worker's process: ``python -m apps.tuning.worker TUNE_DIR [--verbose]``, as ``tune --workers`` starts it.

TensorFlow starts quietly before KerasTuner imports it, so the worker's log (oracle/worker_N.log) holds what
the worker has to say, not TensorFlow's start-up lines.
"""

import sys

from apps.lifeline import follow_parent
from apps.quiet import start_tensorflow

if __name__ == "__main__":
    follow_parent()
    start_tensorflow("--verbose" in sys.argv, "keras_tuner")
    from apps.tuning.workers import worker_main

    sys.exit(worker_main(sys.argv[1:]))
