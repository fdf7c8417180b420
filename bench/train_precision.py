"""Side-by-side: one MiniLM training step in fp32 vs bf16 autocast on real tweets (why `train.precision: bf16`).

Run: .venv/bin/python bench/train_precision.py [--steps 5]
"""

import argparse
import time

import torch

from graft import modalities
from graft.core import config
from graft.data import prepare
from graft.data import tables as data
from graft.modalities.text.data import default_source


def step_seconds(net, tok, texts, labels, precision: str, steps: int) -> float:
    """Median seconds of a full forward + backward + AdamW step."""
    opt = torch.optim.AdamW(net.parameters(), lr=1e-5)
    times = []
    for i in range(steps + 1):  # the first step warms up kernels and is not counted
        enc = tok(texts, padding="max_length", truncation=True, max_length=64, return_tensors="pt")
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = net(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    """Measure both precisions in one process and print the ratio."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    cfg = config.load(args.params)
    rows = prepare.clean(data.read_table(default_source(), cfg.data), "text").head(32)
    labels = torch.tensor([cfg.data.labels.index(v) for v in rows["label"]])
    result = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        proc, net = modalities.get("text").build(cfg.select.candidates[0], {"label": len(cfg.data.labels)},
                                                  "pretrained", cfg)
        tok = proc.tokenizer
        result[precision] = step_seconds(net.train(), tok, rows["text"].tolist(), labels, precision, args.steps)
        print(f"{precision}: {result[precision]:.3f} s/step (batch 32 x 64 tokens, {torch.get_num_threads()} threads)")
    print(f"bf16 speed-up over fp32: {result['fp32'] / result['bf16']:.2f}x")


if __name__ == "__main__":
    main()
