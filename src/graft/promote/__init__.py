"""Promotion: the gate's policy, the MLflow registry, lineage tags, model cards, and the freshness check."""
