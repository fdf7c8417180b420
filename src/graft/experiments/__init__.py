"""Experiments beside the promotion pipeline: the data-efficiency curve and the multi-task demo."""
