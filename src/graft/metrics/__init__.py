"""Numbers about predictions: scores, paired statistics, transferability (LogME). numpy and scikit-learn only."""
