"""The `evaluate` KFP component."""
