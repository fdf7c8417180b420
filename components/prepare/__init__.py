"""The `prepare` KFP component."""
