"""The classical text baseline: TF-IDF of word 1-2-grams and logistic regression (trains in about a second)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from graft.metrics.scores import label_ids


def tfidf(train: pd.DataFrame, test: pd.DataFrame, classes: list[str], seed: int,
          label: str = "label") -> np.ndarray:
    """Test-class probabilities of TF-IDF + logistic regression trained on `train` (column `label`)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
                         LogisticRegression(C=10.0, max_iter=2000, random_state=seed))
    pipe.fit(train["text"].astype(str), label_ids(train[label], classes))
    probs = np.zeros((len(test), len(classes)))
    probs[:, pipe.classes_] = pipe.predict_proba(test["text"].astype(str))
    return probs
