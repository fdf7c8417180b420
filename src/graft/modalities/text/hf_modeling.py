"""Hugging Face code for a saved graft text model, copied into each model folder as `modeling_graft.py`.

A graft text classifier is a transformer encoder, mean pooling over the attention mask, dropout and a linear head;
no class in transformers has that shape (BertForSequenceClassification pools the first token through a dense
layer), so a folder claiming `model_type: bert` would load with a random head. The folder's `config.json` says
`model_type: graft_text` and maps the Auto classes to this file instead:

    AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)

builds `GraftTextClassifier`, whose parameter names (`encoder.*`, `head.*`) are the ones graft saves, and gives
graft's logits. Without `trust_remote_code=True` transformers refuses to load it rather than guess. This file
imports only transformers and torch: it must work where graft is not installed.
"""

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput


class GraftTextConfig(PretrainedConfig):
    """The encoder's own config (`encoder`, a dict), the pooling and the head's dropout; labels as usual."""

    model_type = "graft_text"

    def __init__(self, encoder=None, pooling="mean", classifier_dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.encoder = dict(encoder or {})
        self.pooling = pooling
        self.classifier_dropout = classifier_dropout


class GraftTextClassifier(PreTrainedModel):
    """Encoder, mean pooling, dropout, linear head: (input_ids, attention_mask) -> logits."""

    config_class = GraftTextConfig
    base_model_prefix = "graft"

    def __init__(self, config):
        super().__init__(config)
        encoder_config = AutoConfig.for_model(**config.encoder)
        self.encoder = AutoModel.from_config(encoder_config, add_pooling_layer=False)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.head = nn.Linear(encoder_config.hidden_size, config.num_labels)
        self.post_init()

    def _init_weights(self, module):
        """Weights come from the folder; nothing here is left untrained."""

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        """Logits (and the cross-entropy loss when `labels` are given), as transformers' classifiers return them."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        logits = self.head(self.dropout(pooled))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)
