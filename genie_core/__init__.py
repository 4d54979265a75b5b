"""LLM-Genie core library: configs, data, templates, models and training stages.

This package never imports Prefect: ``genie_core.pipeline`` plans and runs pipeline steps; the Prefect tasks and
flows in ``tasks/`` and ``flows/`` wrap it.
"""

__version__ = "0.2.0"
