"""The terms the report pages use, explained once: a glossary at the end of each page, linked from the text."""

from __future__ import annotations

from html import escape as esc

TERMS = {
    "macro-F1": "The F1 score (harmonic mean of precision and recall) of each class, averaged with equal weight: a "
                "rare class counts as much as a common one. The metric the gate and the model choice use.",
    "95% CI": "A 95% confidence interval from the paired bootstrap: the test rows are resampled with replacement "
              "(evaluate.bootstrap_resamples times), both models scored on the same resample. An interval above "
              "zero means the difference is not a sampling accident of this test split.",
    "McNemar p": "McNemar's exact test on the rows where exactly one of two models is right; a small p says their "
                 "errors differ beyond chance.",
    "ECE": "Expected calibration error: how far the predicted probabilities are from the observed accuracy, "
           "averaged over 15 confidence bins. 0 is perfectly calibrated; 0.05 means 5 points off on average.",
    "LogME": "Log maximum evidence (You et al., 2021): how well a linear model on a backbone's frozen features "
             "explains the labels, computed in closed form without training. Higher is a better starting point.",
    "probe accuracy": "Cross-validated accuracy of a logistic regression on a backbone's frozen features: the "
                      "second signal selection ranks by.",
    "Kendall tau": "Rank correlation between selection's predicted ranking and the fine-tuned runners-up' real "
                   "test scores (1: same order, -1: reversed).",
    "source_only": "The model fine-tuned on the labeled (source) data only, without domain adaptation.",
    "adapted": "The model trained with train.adapt (AdaBN, DANN, self-training or TAPT) on unlabeled target-domain "
               "inputs beside the labeled data.",
    "scratch": "The same architecture trained from random weights on the same data and budget: what transfer must "
               "beat.",
    "classical": "A baseline without transfer that a team would try first (TF-IDF + logistic regression for "
                 "texts; a small CNN at native resolution for images); the page names it.",
    "champion": "The registered version the serving alias points at: the model in production the candidate must "
                "not be worse than.",
    "deletion ratio": "How much more the predicted-class probability drops when the top-attributed 20% of an "
                      "input's units are deleted than when a random 20% are: above 1 means the attributions point "
                      "at what the model uses.",
    "completeness": "Integrated gradients' attributions add up to p(input) - p(baseline); the share of inputs whose "
                    "sum is within the bound says the integration steps suffice.",
    "shortcut": "An artefact (links, @handles, markup; an image's frame) that carries a large share of a class's "
                "evidence: the model may have learned it instead of the content, and fail where it is absent.",
    "agreement": "Share of test rows where the ONNX model predicts the same class as PyTorch.",
}


def section(used: str) -> str:
    """The glossary of the terms that occur in the page text `used` (each term is an anchor `#term-...`)."""
    rows = "".join(f'<dt id="{anchor(t)}">{esc(t)}</dt><dd>{esc(d)}</dd>' for t, d in TERMS.items() if t in used)
    return f'<h2 id="glossary">Glossary</h2><dl class="glossary">{rows}</dl>' if rows else ""


def anchor(term: str) -> str:
    """The id of a term's entry."""
    return "term-" + "".join(ch if ch.isalnum() else "-" for ch in term.lower())
