"""The `gate` KFP component."""
