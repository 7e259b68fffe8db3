"""BOLT: bootstrapping long chain-of-thought without distillation, as a library.

Everything here computes; nothing here imports Prefect (the training entrypoints run
inside cluster jobs where only the library is installed). Orchestration lives in the
top-level ``tasks`` and ``flows`` packages.
"""

__version__ = "0.1.0"
