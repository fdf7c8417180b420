"""The `export` KFP component."""
