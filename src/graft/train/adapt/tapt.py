"""TAPT (Gururangan et al. 2020): continued masked-LM training of the text encoder on target + training texts.

The packaged MiniLM is a sentence encoder saved without its masked-LM head, so a new head is built here: a dense
layer, GELU and LayerNorm (BERT's transform), then a decoder whose weight IS the encoder's word-embedding matrix
(tied, as in BERT) plus a new bias. The transform starts random, so the first quarter of the steps trains the
head alone (the encoder frozen): its first gradients are noise that would otherwise reach the pretrained
weights. The head is discarded after this phase, and the adapted encoder goes on to the usual fine-tuning.
Masking is BERT's: `mask_probability` of the non-special tokens, 80% replaced by [MASK], 10% by a random token,
10% left as they are.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from graft.core import progress
from graft.core.errors import GraftError
from graft.train import optim
from graft.train.adapt.base import Context, Method
from graft.train.batching import bucketed


class TiedHead(nn.Module):
    """BERT's masked-LM head on hidden states, its decoder tied to the input embeddings."""

    def __init__(self, embeddings: nn.Embedding, hidden: int, eps: float = 1e-12):
        super().__init__()
        self.transform = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.LayerNorm(hidden, eps=eps))
        self.embeddings = embeddings
        self.bias = nn.Parameter(torch.zeros(embeddings.num_embeddings))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits for each hidden state."""
        return self.transform(hidden) @ self.embeddings.weight.T + self.bias


def mask_tokens(ids: torch.Tensor, attention: torch.Tensor, special: torch.Tensor, mask_id: int, vocab: int,
                p: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked input ids, labels with -100 where nothing is predicted), BERT's 80/10/10 scheme."""
    can = attention.bool() & ~torch.isin(ids, special)
    chosen = (torch.rand(ids.shape, generator=gen) < p) & can
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    roll = torch.rand(ids.shape, generator=gen)
    out = ids.clone()
    out[chosen & (roll < 0.8)] = mask_id
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    out[swap] = torch.randint(vocab, ids.shape, generator=gen)[swap]
    return out, labels


class TAPT(Method):
    """Masked-LM on the target domain's texts before fine-tuning."""

    name = "tapt"

    def __init__(self, cfg):
        self.cfg, self.a = cfg, cfg.train.adaptation

    def before(self, ctx: Context) -> dict:
        """Train the encoder (and a temporary tied head) for tapt_epochs; report the masked-LM loss."""
        tok, encoder, t, dev = ctx.processor.tokenizer, ctx.model.encoder, self.cfg.train, ctx.hw.device
        if tok.mask_token_id is None:
            raise GraftError("train.adapt=tapt: the backbone's tokenizer has no mask token")
        texts = list(ctx.target) + list(ctx.source)
        encoded = ctx.modality.encode(ctx.processor, texts)
        head = TiedHead(encoder.get_input_embeddings(), encoder.config.hidden_size,
                        getattr(encoder.config, "layer_norm_eps", 1e-12)).to(dev)
        special = torch.tensor(tok.all_special_ids)
        steps = -(-len(texts) // t.batch_size) * self.a.tapt_epochs
        params = [p for p in encoder.parameters() if p.requires_grad] + list(head.transform.parameters()) + [
            head.bias]
        opt = torch.optim.AdamW(params, lr=t.learning_rate, weight_decay=t.weight_decay, fused=True)
        sched = optim.scheduler(opt, t, steps)
        encoder.train()
        losses, start = [], time.perf_counter()
        for epoch in range(1, self.a.tapt_epochs + 1):
            for idx in progress.bar(bucketed(encoded.lengths(), t.batch_size, ctx.gen), unit="batch",
                                    desc=f"tapt {epoch}/{self.a.tapt_epochs}"):
                batch = encoded.batch(idx, torch.device("cpu"))
                ids, labels = mask_tokens(batch["input_ids"], batch["attention_mask"], special, tok.mask_token_id,
                                          head.bias.numel(), self.a.mask_probability, ctx.gen)
                chosen = labels != -100
                if not chosen.any():
                    continue
                with ctx.hw.autocast(), torch.set_grad_enabled(len(losses) >= steps // 4):
                    hidden = encoder(input_ids=ids.to(dev), attention_mask=batch["attention_mask"].to(dev)
                                     ).last_hidden_state
                with ctx.hw.autocast():
                    logits = head(hidden[chosen.to(dev)])
                loss = nn.functional.cross_entropy(logits.float(), labels[chosen].to(dev))
                loss.backward()
                optim.step(opt, params, 1.0)
                sched.step()
                opt.zero_grad(set_to_none=True)
                losses.append(loss.item())
        third = max(1, len(losses) // 3)
        return {"texts": len(texts), "target_texts": len(ctx.target), "steps": len(losses),
                "mlm_loss_first": round(sum(losses[:third]) / third, 4),
                "mlm_loss_last": round(sum(losses[-third:]) / third, 4),
                "seconds": round(time.perf_counter() - start, 2),
                "head": "new transform + decoder tied to the word embeddings (MiniLM ships no MLM head)"}
