"""graft: transfer learning as a production pipeline.

Each stage is a plain typed function in its own module (prepare, validate, select, train, evaluate, export, gate,
registry); `graft.cli` is the thin command line over them, and the DVC and KFP pipelines call the same functions.
"""

__version__ = "0.1.0"
