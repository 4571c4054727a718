"""all-MiniLM-L6-v2 as a plain torch module: a 6-layer BERT, mean pooling, L2 normalisation.

Importing sentence-transformers costs ~10 s (it pulls in all of transformers);
this 80-line encoder reads the same safetensors weights and tokenizer.json and
gives the same embeddings (checked against sentence-transformers in the tests)
in well under a second.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F


class BertLayer(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int, eps: float):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.attn_out, self.attn_norm = nn.Linear(dim, dim), nn.LayerNorm(dim, eps=eps)
        self.up, self.down, self.out_norm = nn.Linear(dim, hidden), nn.Linear(hidden, dim), nn.LayerNorm(dim, eps=eps)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n, t, d = h.shape
        split = lambda x: x.view(n, t, self.heads, d // self.heads).transpose(1, 2)
        q, k, v = split(self.query(h)), split(self.key(h)), split(self.value(h))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads) + mask
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(n, t, d)
        h = self.attn_norm(h + self.attn_out(ctx))
        return self.out_norm(h + self.down(F.gelu(self.up(h))))


class MiniLM(nn.Module):
    def __init__(self, vocab: int, dim: int, layers: int, heads: int, hidden: int, positions: int,
                 types: int, eps: float):
        super().__init__()
        self.word, self.position = nn.Embedding(vocab, dim), nn.Embedding(positions, dim)
        self.token_type, self.norm = nn.Embedding(types, dim), nn.LayerNorm(dim, eps=eps)
        self.layers = nn.ModuleList(BertLayer(dim, heads, hidden, eps) for _ in range(layers))

    def states(self, ids: torch.Tensor, attention: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        """The token states [n, t, dim] after the first ``depth`` layers (default: all of them)."""
        pos = torch.arange(ids.shape[1])[None]
        h = self.norm(self.word(ids) + self.position(pos) + self.token_type(torch.zeros_like(ids)))
        mask = (1.0 - attention[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for layer in self.layers[:depth]:
            h = layer(h, mask)
        return h

    def forward(self, ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        h = self.states(ids, attention)
        weights = attention[..., None].float()
        pooled = (h * weights).sum(1) / weights.sum(1).clamp_min(1e-9)
        return F.normalize(pooled, dim=-1)


_RENAMES = [("encoder.layer.", "layers."), ("attention.self.", ""), ("attention.output.dense", "attn_out"),
            ("attention.output.LayerNorm", "attn_norm"), ("intermediate.dense", "up"),
            ("output.dense", "down"), ("output.LayerNorm", "out_norm"), ("embeddings.word_embeddings", "word"),
            ("embeddings.position_embeddings", "position"), ("embeddings.token_type_embeddings", "token_type"),
            ("embeddings.LayerNorm", "norm")]


class MiniLMEncoder:
    """Tokenizer + model from a sentence-transformers folder; ``encode(list[str]) -> [N, 384]``, and
    ``encode_words`` for one layer's word states."""

    def __init__(self, folder: str | Path):
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        folder = Path(folder)
        cfg = json.loads((folder / "config.json").read_text())
        max_len = json.loads((folder / "sentence_bert_config.json").read_text()).get("max_seq_length", 256)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_len)
        self.tokenizer.enable_padding(pad_id=cfg.get("pad_token_id", 0), pad_token="[PAD]")
        self.model = MiniLM(cfg["vocab_size"], cfg["hidden_size"], cfg["num_hidden_layers"],
                            cfg["num_attention_heads"], cfg["intermediate_size"], cfg["max_position_embeddings"],
                            cfg["type_vocab_size"], cfg["layer_norm_eps"])
        state = {}
        for key, value in load_file(str(folder / "model.safetensors")).items():
            if key.startswith("pooler") or key.endswith("position_ids"):
                continue  # mean pooling does not use BERT's pooler
            for old, new in _RENAMES:
                key = key.replace(old, new)
            state[key] = value
        self.model.load_state_dict(state)
        self.model.eval()

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 256) -> torch.Tensor:
        return torch.cat([self.model(ids, attention) for ids, attention in self._batches(texts, batch_size)])

    @torch.inference_mode()
    def encode_words(self, texts: list[str], depth: int, batch_size: int = 256) -> torch.Tensor:
        """``[N, 384]``: the element-wise max over each text's word tokens (not [CLS], [SEP] or padding) of
        the token states after ``depth`` layers, L2-normalised.  The middle layers still keep the words
        apart that the sentence mean blurs ("left" against "right": docs/benchmarks-video.md)."""
        special = torch.tensor([self.tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]")])
        out = []
        for ids, attention in self._batches(texts, batch_size):
            h = self.model.states(ids, attention, depth)
            words = attention.bool() & ~torch.isin(ids, special)
            out.append(F.normalize(h.masked_fill(~words[..., None], float("-inf")).amax(1), dim=-1))
        return torch.cat(out)

    def _batches(self, texts: list[str], batch_size: int):
        for i in range(0, len(texts), batch_size):
            enc = self.tokenizer.encode_batch(texts[i:i + batch_size])
            yield torch.tensor([e.ids for e in enc]), torch.tensor([e.attention_mask for e in enc])
