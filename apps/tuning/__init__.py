"""``dlapps DOMAIN tune``: a hyperparameter search on KerasTuner whose every trial is a ``dlapps DOMAIN train`` run.

KerasTuner's oracle (random, Bayesian optimisation, Hyperband, grid) chooses each trial's settings and keeps the
search's state; each trial trains in a process of its own, exactly as ``train`` would, so its memory is
returned when it ends and an interrupted trial resumes as any run does.
"""

ALGORITHMS = ("random", "bayesian", "hyperband", "grid")
