"""Modality-free model pieces: the classifier base, inference, frozen-feature caching."""
