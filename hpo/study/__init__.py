"""Optuna glue: storage, samplers and pruners, the search space, the objective and the worker loop."""
