"""The `select` KFP component."""
