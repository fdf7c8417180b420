"""The `register` KFP component."""
