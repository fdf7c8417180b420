"""The `freshness` KFP component."""
