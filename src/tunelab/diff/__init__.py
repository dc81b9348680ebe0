"""`tunelab diff`: two runs (or a run and a config) side by side, differences ranked by their effect.

Layered above runtime/data/training: it only reads run directories (and, for a config side,
resolves the config and the runtime plan this machine would choose). See docs/diff.md.
"""

from tunelab.diff.compare import SCHEMA, DiffResult, compare

__all__ = ["SCHEMA", "DiffResult", "compare"]
