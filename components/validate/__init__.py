"""The `validate` KFP component."""
