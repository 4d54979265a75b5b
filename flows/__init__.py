"""Prefect flows chaining stage tasks into pipelines."""
