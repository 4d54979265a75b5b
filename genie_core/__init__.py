"""LLM-Genie core library: configs, data, templates, models and training stages.

This package never imports Prefect; orchestration lives in ``tasks/`` and ``flows/``.
"""

__version__ = "0.1.0"
