"""The `train` KFP component."""
