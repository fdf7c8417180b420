"""Each domain-adaptation method changes what it should, on the shrunk configs (seconds, not minutes)."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from graft import modalities
from graft.core import config
from graft.core.errors import GraftError
from graft.experiments.shifts import noisy
from graft.modalities.image.model import build
from graft.train import adapt, fit
from graft.train.adapt import adabn, dann, self_training, tapt


@pytest.fixture(scope="module")
def fashion(image_raw):
    """Fashion-MNIST: 100 training, 30 validation images; the target pool is 100 other images under noise."""
    table = pd.read_parquet(image_raw)
    rng = np.random.default_rng(0)
    target = table.iloc[200:300].copy()
    target["image"] = [noisy(b, rng) for b in target["image"]]
    return table.iloc[:100], table.iloc[100:130], target


@pytest.fixture(scope="module")
def tweets(raw_file, shrunk):
    """Election tweets: 120 training and 40 validation rows (summer 2016), 100 September tweets as the target."""
    text = modalities.get("text")
    df = text.clean(text.read_table(raw_file, shrunk[1].data)).reset_index(drop=True)
    when = df["time"].astype(str)
    summer, autumn = df[when < "2016-08-01"], df[when >= "2016-09-01"]
    return summer.iloc[:120], summer.iloc[120:160], autumn.iloc[:100]


def with_adapt(params: dict, method: str, **adaptation) -> config.Config:
    p = copy.deepcopy(params)
    p["train"].update(adapt=method, adaptation=adaptation)
    return config.from_dict(p)


def test_adabn_changes_only_the_batch_norm_statistics(image_shrunk, fashion):
    cfg = image_shrunk[1]
    processor, model = build(cfg.select.candidates[0], 10, "pretrained", 0.0, 32)
    before, momenta = copy.deepcopy(model.state_dict()), [m.momentum for m in adabn.batch_norms(model)]
    layers = adabn.reestimate(model, modalities.get("image").encode(processor, fashion[2]["image"].tolist()),
                              torch.device("cpu"))
    after = model.state_dict()
    stats = {k for k in before if k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert layers == len(adabn.batch_norms(model)) > 10
    assert changed and changed <= stats  # no weight, bias or affine parameter moved
    assert {k for k in changed if k.endswith("running_mean")} == {k for k in stats if k.endswith("running_mean")}
    assert [m.momentum for m in adabn.batch_norms(model)] == momenta  # restored after the cumulative pass
    assert not model.training


def test_gradient_reversal_flips_and_scales_the_gradient():
    x = torch.ones(3, requires_grad=True)
    (dann.reverse(x, 0.3) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.allclose(x.grad, torch.tensor([-0.3, -0.6, -0.9]))
    lams = [dann.coefficient(p, 1.0) for p in (0.0, 0.1, 0.5, 1.0)]
    assert lams[0] == 0.0 and lams == sorted(lams) and 0.99 < lams[-1] <= 1.0  # warm start, rising to the weight


def test_dann_pushes_the_discriminator_toward_chance(image_shrunk, fashion, tmp_path):
    """Clean -> noisy images: with the reversed gradient the discriminator ends nearer 0.5 than without it.

    The control is the same run with a vanishing reversal weight: the discriminator trains the same way, but the
    backbone gets (almost) no gradient from it, so nothing makes the domains look alike.
    """
    params = copy.deepcopy(image_shrunk[0])
    params["train"].update(epochs=4, batch_size=8)  # 52 steps: enough for the discriminator to learn the noise
    train, validation, target = fashion
    last = {}
    for name, weight in (("control", 1e-6), ("dann", 1.0)):
        cfg = with_adapt(params, "dann", dann_weight=weight, discriminator_learning_rate=1e-2)
        run = fit(train, validation, cfg.select.candidates[0], cfg, "pretrained", tmp_path / name, target=target)
        assert all(0 <= row["domain_accuracy"] <= 1 and "dann_lambda" in row for row in run["history"])
        last[name] = run["history"][-1]["domain_accuracy"]
    assert abs(last["dann"] - 0.5) < abs(last["control"] - 0.5), last


def test_pseudo_labels_respect_the_threshold_and_balance_the_classes():
    probs = np.array([[0.97, 0.03], [0.95, 0.05], [0.92, 0.08], [0.91, 0.09], [0.6, 0.4], [0.05, 0.95],
                      [0.3, 0.7]])
    keep, classes = self_training.pseudo_labels(probs, threshold=0.9, share=0.5)
    # class 0 is predicted 5 times: the top half (3) by confidence, all >= 0.9; class 1 twice: its top 1 (0.95)
    assert keep.tolist() == [0, 1, 2, 5] and classes.tolist() == [0, 0, 0, 1]
    keep, _ = self_training.pseudo_labels(probs, threshold=0.9, share=1.0)
    assert keep.tolist() == [0, 1, 2, 3, 5] and probs[keep].max(1).min() >= 0.9
    assert self_training.pseudo_labels(probs, threshold=0.99, share=1.0)[0].size == 0
    keep, classes = self_training.pseudo_labels(probs, threshold=0.9, share=1.0, limit=2)
    # a cap of 2: class 0 (5 of 7 predictions) keeps ceil(2 * 5/7) = 2, class 1 (2 of 7) ceil(2 * 2/7) = 1
    assert keep.tolist() == [0, 1, 5] and classes.tolist() == [0, 0, 1]


def test_self_training_rounds_train_on_confident_target_rows(shrunk, tweets, tmp_path):
    cfg = with_adapt(shrunk[0], "self_training", pseudo_threshold=0.5, rounds=2, max_target_ratio=0.75)
    run = fit(*tweets[:2], cfg.select.candidates[0], cfg, "pretrained", tmp_path / "st", target=tweets[2])
    rounds = run["adaptation"]["rounds"]
    assert (run["adaptation"]["target_pool"], run["adaptation"]["target_inputs"]) == (100, 90)  # 0.75 x 120 rows
    assert [r["round"] for r in rounds] == [1, 2]
    assert all(r["pseudo_labels"] == sum(r["per_class"].values()) for r in rounds)
    assert all(r["min_confidence"] is None or r["min_confidence"] >= 0.5 for r in rounds)
    assert rounds[1]["pseudo_labels"] >= rounds[0]["pseudo_labels"] > 0  # the share grows with the round
    assert len(rounds[0]["history"]) == 1  # round_epochs


def test_the_target_sample_is_seeded_in_pool_order_and_bounded_by_the_ratio():
    pool = list(range(100))
    assert adapt.sample(pool, 60, 2.0, seed=0) is pool  # 100 <= 120: everything
    picked = adapt.sample(pool, 30, 1.5, seed=0)
    assert len(picked) == 45 and picked == sorted(set(picked)) and picked == adapt.sample(pool, 30, 1.5, seed=0)
    assert picked != adapt.sample(pool, 30, 1.5, seed=1)


def test_masking_never_touches_special_tokens_or_padding():
    gen = torch.Generator().manual_seed(0)
    ids = torch.tensor([[101] + [2000 + i for i in range(60)] + [102, 0, 0]] * 40)
    attention = (ids != 0).long()
    out, labels = tapt.mask_tokens(ids, attention, torch.tensor([0, 101, 102, 103]), 103, 30522, 0.15, gen)
    chosen = labels != -100
    assert not chosen[:, 0].any() and not chosen[:, 61:].any()
    assert 0.10 < chosen[:, 1:61].float().mean() < 0.20
    assert torch.equal(labels[chosen], ids[chosen])
    share_masked = (out[chosen] == 103).float().mean()
    assert 0.7 < share_masked < 0.9 and torch.equal(out[~chosen], ids[~chosen])


def test_tapt_lowers_the_masked_lm_loss_and_changes_the_encoder(shrunk, tweets, tmp_path):
    cfg = with_adapt(shrunk[0], "tapt", tapt_epochs=3)
    run = fit(*tweets[:2], cfg.select.candidates[0], cfg, "pretrained", tmp_path / "tapt", target=tweets[2])
    a = run["adaptation"]
    assert a["texts"] == 220 and a["target_texts"] == 100 and "tied" in a["head"]
    assert a["mlm_loss_last"] < a["mlm_loss_first"]


@pytest.mark.parametrize("modality, method, says", [
    ("text", "adabn", "adabn does not apply to short texts"),
    ("image", "tapt", "tapt does not apply to images"),
])
def test_a_method_that_does_not_apply_is_a_one_line_config_error(shrunk, image_shrunk, modality, method, says):
    params = shrunk[0] if modality == "text" else image_shrunk[0]
    cfg = with_adapt(params, method)
    with pytest.raises(GraftError, match=says) as err:
        adapt.method(cfg, modalities.get(modality), "pretrained", ["x"], 1, 1)
    assert "\n" not in str(err.value)


def test_adaptation_needs_target_inputs_and_a_trainable_backbone(shrunk):
    text = modalities.get("text")
    with pytest.raises(GraftError, match="set data.target.raw"):
        adapt.method(with_adapt(shrunk[0], "dann"), text, "pretrained", [], 1, 1)
    p = copy.deepcopy(shrunk[0])
    p["train"]["mode"] = "feature_extraction"
    with pytest.raises(GraftError, match="set train.mode to finetune or partial"):
        adapt.method(with_adapt(p, "dann"), text, "pretrained", ["x"], 1, 1)
    assert adapt.method(with_adapt(shrunk[0], "dann"), text, "scratch", [], 1, 1).name == "none"  # the baseline
    assert adapt.method(with_adapt(shrunk[0], "dann"), text, "pretrained", None, 1, 1).name == "none"  # train
