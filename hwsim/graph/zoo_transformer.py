"""Model families for transformers: BERT encoder, ViT, Llama decoder (prefill and decode).

Shapes and parameter sets follow the Hugging Face / torchvision definitions, so parameter counts
match the published ones (bert-base-uncased 109,482,240 with pooler; vit_b_16 86,567,656;
Llama-2-7B 6,738,415,616). Attention is computed dense (no MACs saved by a causal mask).
"""

from __future__ import annotations

import math

import numpy as np

from hwsim.errors import ConfigError
from hwsim.graph.builder import Builder
from hwsim.graph.ir import Graph, Tensor


def _const(b: Builder, name: str, value: np.ndarray) -> str:
    b.g.add_tensor(Tensor(name, tuple(value.shape), "const", data=value, dtype=str(value.dtype)))
    return name


def _split_heads(b: Builder, x: str, heads: int, name: str) -> str:
    bsz, seq, d = b.g.tensors[x].shape
    if d % heads:
        raise ConfigError(f"model {b.g.name!r}: width {d} of {name} is not divisible by heads={heads}; "
                          "pick heads that divide hidden (e.g. hidden=768,heads=12)")
    return b.transpose(b.reshape(x, (bsz, seq, heads, d // heads), f"{name}.view"), (0, 2, 1, 3), f"{name}.heads")


def _attention(b: Builder, q: str, k: str, v: str, p: str, hidden: int) -> str:
    """softmax(q k^T / sqrt(d)) v on (batch, heads, seq, d) tensors, then merge heads."""
    bsz, heads, seq, d = b.g.tensors[q].shape
    scale = _const(b, f"{p}.scale", np.array([1.0 / math.sqrt(d)], dtype=np.float32))
    kt = b.transpose(k, (0, 1, 3, 2), f"{p}.kT")
    s = b.binary(b.matmul(q, kt, f"{p}.qk"), scale, "mul", f"{p}.scaled")
    o = b.matmul(b.softmax(s, f"{p}.softmax"), v, f"{p}.av")
    o = b.transpose(o, (0, 2, 1, 3), f"{p}.merge")
    return b.reshape(o, (bsz, seq, hidden), f"{p}.merged")


def _repeat_kv(b: Builder, x: str, groups: int, name: str) -> str:
    if groups == 1:
        return x
    return b.concat([x] * groups, 1, name)


def bert(name: str, layers: int = 12, hidden: int = 768, heads: int = 12, intermediate: int = 3072,
         vocab: int = 30522, max_position: int = 512, type_vocab: int = 2, sequence: int = 128,
         batch: int = 1, pooler: bool = True) -> Graph:
    """BERT encoder (post-norm, GELU), embeddings included; ``pooler`` adds the tanh pooler."""
    b = Builder(name)
    ids = b.input("input_ids", (batch, sequence), "int64")
    types = b.input("token_type_ids", (batch, sequence), "int64")
    pos = _const(b, "position_ids", np.arange(sequence, dtype=np.int64)[None].repeat(batch, 0))
    x = b.binary(b.embedding(ids, vocab, hidden, "embeddings.word_embeddings"),
                 b.embedding(types, type_vocab, hidden, "embeddings.token_type_embeddings"), "add", "embeddings.add0")
    x = b.binary(x, b.embedding(pos, max_position, hidden, "embeddings.position_embeddings"), "add", "embeddings.add1")
    x = b.layernorm(x, "embeddings.LayerNorm", eps=1e-12)
    for i in range(layers):
        p = f"encoder.layer.{i}"
        q, k, v = (_split_heads(b, b.linear(x, hidden, f"{p}.attention.self.{n}"), heads, f"{p}.{n}")
                   for n in ("query", "key", "value"))
        a = b.linear(_attention(b, q, k, v, f"{p}.attention", hidden), hidden, f"{p}.attention.output.dense")
        x = b.layernorm(b.binary(a, x, "add", f"{p}.attention.residual"), f"{p}.attention.output.LayerNorm", eps=1e-12)
        h = b.act(b.linear(x, intermediate, f"{p}.intermediate.dense"), "gelu", f"{p}.intermediate.gelu")
        h = b.linear(h, hidden, f"{p}.output.dense")
        x = b.layernorm(b.binary(h, x, "add", f"{p}.output.residual"), f"{p}.output.LayerNorm", eps=1e-12)
    b.output(x)
    if pooler:
        cls = b.reshape(b.slice(x, 1, 0, 1, "pooler.first_token"), (batch, hidden), "pooler.squeeze")
        b.output(b.act(b.linear(cls, hidden, "pooler.dense"), "tanh", "pooler.activation"))
    return b.g


def vit(name: str, image: int = 224, patch: int = 16, layers: int = 12, hidden: int = 768, heads: int = 12,
        mlp: int = 3072, num_classes: int = 1000, batch: int = 1) -> Graph:
    """Vision Transformer (torchvision vit_b_16 layout: pre-norm, class token, learned positions)."""
    if image % patch:
        raise ConfigError(f"model {name!r}: image={image} is not divisible by patch={patch}; pick a patch that "
                          f"divides the image size (e.g. patch=16 or 14 for image=224)")
    b = Builder(name)
    x = b.input("input", (batch, 3, image, image))
    n = (image // patch) ** 2
    x = b.conv(x, hidden, patch, "conv_proj", stride=patch, pad=0, bias=True)
    x = b.transpose(b.reshape(x, (batch, hidden, n), "patches"), (0, 2, 1), "tokens")
    cls = b.param("class_token", (1, 1, hidden))
    if batch > 1:
        cls = b.concat([cls] * batch, 0, "class_token.expand")
    x = b.concat([cls, x], 1, "prepend_class_token")
    x = b.binary(x, b.param("encoder.pos_embedding", (1, n + 1, hidden)), "add", "encoder.add_pos")
    for i in range(layers):
        p = f"encoder.layers.encoder_layer_{i}"
        y = b.layernorm(x, f"{p}.ln_1", eps=1e-6)
        q, k, v = (_split_heads(b, b.linear(y, hidden, f"{p}.self_attention.{nm}"), heads, f"{p}.{nm}")
                   for nm in ("q_proj", "k_proj", "v_proj"))
        y = b.linear(_attention(b, q, k, v, f"{p}.attn", hidden), hidden, f"{p}.self_attention.out_proj")
        x = b.binary(x, y, "add", f"{p}.residual1")
        y = b.act(b.linear(b.layernorm(x, f"{p}.ln_2", eps=1e-6), mlp, f"{p}.mlp.0"), "gelu", f"{p}.mlp.1")
        x = b.binary(x, b.linear(y, hidden, f"{p}.mlp.3"), "add", f"{p}.residual2")
    x = b.layernorm(x, "encoder.ln", eps=1e-6)
    cls_out = b.reshape(b.slice(x, 1, 0, 1, "class_token.out"), (batch, hidden), "class_token.flat")
    b.output(b.linear(cls_out, num_classes, "heads.head"))
    return b.g


def llama(name: str, layers: int = 32, hidden: int = 4096, heads: int = 32, kv_heads: int | None = None,
          intermediate: int = 11008, vocab: int = 32000, phase: str = "prefill", context: int = 512,
          batch: int = 1, tie_embeddings: bool = False, norm_eps: float = 1e-5) -> Graph:
    """Llama decoder. ``prefill``: ``context`` prompt tokens, KV cache written. ``decode``: one new
    token per sequence attending to ``context`` cached tokens, which are read from the KV cache."""
    if phase not in ("prefill", "decode"):
        raise ConfigError(f"llama phase must be 'prefill' or 'decode', got {phase!r}")
    kv_heads = kv_heads or heads
    if heads % kv_heads:
        raise ConfigError(f"model {name!r}: heads={heads} is not divisible by kv_heads={kv_heads}; pick kv_heads "
                          f"that divides heads (e.g. kv_heads={heads} or 1)")
    d = hidden // heads
    seq, cached = (context, 0) if phase == "prefill" else (1, context)
    b = Builder(name)
    x = b.embedding(b.input("input_ids", (batch, seq), "int64"), vocab, hidden, "model.embed_tokens")
    for i in range(layers):
        p = f"model.layers.{i}"
        y = b.layernorm(x, f"{p}.input_layernorm", rms=True, eps=norm_eps)
        q = b.rotary(_split_heads(b, b.linear(y, hidden, f"{p}.self_attn.q_proj", bias=False), heads, f"{p}.q"),
                     f"{p}.q_rotary", offset=cached)
        k = b.rotary(_split_heads(b, b.linear(y, kv_heads * d, f"{p}.self_attn.k_proj", bias=False), kv_heads,
                                  f"{p}.k"), f"{p}.k_rotary", offset=cached)
        v = _split_heads(b, b.linear(y, kv_heads * d, f"{p}.self_attn.v_proj", bias=False), kv_heads, f"{p}.v")
        k = _repeat_kv(b, b.kv_cache(k, f"{p}.k_cache", cached), heads // kv_heads, f"{p}.k_repeat")
        v = _repeat_kv(b, b.kv_cache(v, f"{p}.v_cache", cached), heads // kv_heads, f"{p}.v_repeat")
        y = b.linear(_attention(b, q, k, v, f"{p}.attn", hidden), hidden, f"{p}.self_attn.o_proj", bias=False)
        x = b.binary(x, y, "add", f"{p}.residual1")
        y = b.layernorm(x, f"{p}.post_attention_layernorm", rms=True, eps=norm_eps)
        gate = b.act(b.linear(y, intermediate, f"{p}.mlp.gate_proj", bias=False), "silu", f"{p}.mlp.act")
        up = b.linear(y, intermediate, f"{p}.mlp.up_proj", bias=False)
        y = b.linear(b.binary(gate, up, "mul", f"{p}.mlp.gated"), hidden, f"{p}.mlp.down_proj", bias=False)
        x = b.binary(x, y, "add", f"{p}.residual2")
    x = b.layernorm(x, "model.norm", rms=True, eps=norm_eps)
    head_w = "model.embed_tokens.weight" if tie_embeddings else None
    b.output(b.linear(x, vocab, "lm_head", bias=False, weight=head_w))
    return b.g
