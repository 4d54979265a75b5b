"""Pipelines without Prefect: spec loading, planning (keys, stage directories, validation), each step's work,
the MLflow runs around them and the summary. The Prefect tasks and flows above call into this package."""
