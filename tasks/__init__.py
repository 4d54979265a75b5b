"""Prefect tasks, one per stage. Thin wrappers: the work lives in genie_core."""
