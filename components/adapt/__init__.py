"""The `adapt` KFP component."""
