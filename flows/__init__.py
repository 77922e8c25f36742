"""Prefect flows: thin orchestration over ``lic`` library calls, one flow per DVC stage.

Run one with ``python -m flows.<name> ARGS`` (what ``dvc.yaml`` does), or the whole chain with
``python -m flows.pipeline``. Flows read their numbers from ``params.yaml`` and pass artifacts
between tasks as paths.
"""
