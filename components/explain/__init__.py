"""The `explain` KFP component."""
