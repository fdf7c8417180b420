"""The `baseline` KFP component."""
