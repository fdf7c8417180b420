"""The `report` KFP component."""
