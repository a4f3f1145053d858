"""A backbone directory of a named shape with random weights (issue #14's GPU check):
config.json in the keys copl's loaders and Hugging Face transformers both read,
model.safetensors (Hugging Face names, random as transformers initialises them) and a
word-level tokenizer.json of the vocabulary's size. Speed does not depend on the weights'
values, so nothing large travels to the GPU machine: it makes its Gemma-2B here.

    python scripts/gpu/backbone.py --shape gemma-2b --out DIR [--device cuda] [--dtype bf16]

Shapes: minilm (all-MiniLM-L6-v2), gemma3-270m (Gemma 3 270M), gemma-2b (Gemma 2B,
the paper's family), and tiny-bert / tiny-gemma / tiny-gemma1 (a test's cost: the dry
run's and the correctness checkpoints'; tiny-gemma1 is Gemma 2B's generation).
"""
import argparse
import json
import os

import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers

BERT = dict(model_type="bert", hidden_act="gelu", hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0, max_position_embeddings=512, type_vocab_size=2,
            initializer_range=0.02, layer_norm_eps=1e-12, pad_token_id=0)
GEMMA3 = dict(model_type="gemma3_text", attention_bias=False, hidden_activation="gelu_pytorch_tanh",
              rms_norm_eps=1e-6, rope_theta=1_000_000.0, rope_local_base_freq=10_000.0,
              final_logit_softcapping=None, attn_logit_softcapping=None, sliding_window_pattern=6,
              max_position_embeddings=32_768)
GEMMA = dict(model_type="gemma", attention_bias=False,
             hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6, rope_theta=10_000.0,
             max_position_embeddings=8192)
SHAPES = {
    "tiny-bert": dict(BERT, vocab_size=2048, hidden_size=16, num_hidden_layers=2,
                      num_attention_heads=2, intermediate_size=32),
    "minilm": dict(BERT, vocab_size=30_522, hidden_size=384, num_hidden_layers=6,
                   num_attention_heads=12, intermediate_size=1536),
    "tiny-gemma": dict(GEMMA3, vocab_size=2048, hidden_size=16, intermediate_size=32,
                       num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                       head_dim=8, query_pre_attn_scalar=8, sliding_window=16,
                       sliding_window_pattern=2, max_position_embeddings=512),
    "tiny-gemma1": dict(GEMMA, vocab_size=2048, hidden_size=16, intermediate_size=32,
                        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                        head_dim=8, max_position_embeddings=512),
    "gemma3-270m": dict(GEMMA3, vocab_size=262_144, hidden_size=640, intermediate_size=2048,
                        num_hidden_layers=18, num_attention_heads=4, num_key_value_heads=1,
                        head_dim=256, query_pre_attn_scalar=256, sliding_window=512),
    "gemma-2b": dict(GEMMA, vocab_size=256_000, hidden_size=2048, intermediate_size=16_384,
                     num_hidden_layers=18, num_attention_heads=8, num_key_value_heads=1,
                     head_dim=256),
}


# Gemma's chat-template markers, one token each as in Gemma's own tokenizer: spelt in
# bytes, the template alone was 73 tokens and filled the dry run's 48-token inputs, so
# no response was read and every pair tied (2026-12-07).
SPECIAL = {"bert": [], "gemma": ["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"]}


def tokenizer(vocab_size, special=()):
    """Byte-level, no merges: every text is its bytes (so texts differ as token
    sequences), ids 0–255; then `special` (one id each); the rest of the vocabulary
    (t… ) only pads its size, for random ids over all of it."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(alphabet)}
    vocab.update({t: len(alphabet) + i for i, t in enumerate(special)})
    vocab.update({f"t{i}": i for i in range(len(vocab), vocab_size)})
    tok = Tokenizer(models.BPE(vocab, []))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.add_special_tokens(list(special))
    return tok


def model_of(config):
    kind = config["model_type"]
    if kind == "bert":
        return transformers.BertModel(transformers.BertConfig(**config), add_pooling_layer=False)
    cls = {"gemma": (transformers.GemmaConfig, transformers.GemmaForCausalLM),
           "gemma3_text": (transformers.Gemma3TextConfig, transformers.Gemma3ForCausalLM)}[kind]
    return cls[1](cls[0](**config))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shape", choices=sorted(SHAPES), required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="cpu", help="where the random weights are made")
    p.add_argument("--dtype", choices=("f32", "bf16"), default="f32", help="of the weights file")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    config = SHAPES[args.shape]
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    with torch.device(args.device):
        model = model_of(config).to(dtype)
    # Gemma scales by 1 + w: non-zero norm weights, so a norm is not the identity. Std 0.1:
    # at 0.3 the tiny Gemma's BF16 scores strayed from its F32 ones by up to 23 % of the
    # largest score (a random tiny model amplifies rounding), at 0.1 by ≤ 3 % (2026-12-06).
    with torch.no_grad():
        for name, t in model.named_parameters():
            if name.endswith("norm.weight") and config["model_type"] != "bert":
                t.normal_(0.0, 0.1)
    model.save_pretrained(args.out, safe_serialization=True)
    # Our keys, not the ones transformers writes back (its own names moved in v5).
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    for extra in ("generation_config.json",):
        path = os.path.join(args.out, extra)
        if os.path.exists(path):
            os.remove(path)
    family = "bert" if config["model_type"] == "bert" else "gemma"
    tokenizer(config["vocab_size"], SPECIAL[family]).save(os.path.join(args.out, "tokenizer.json"))
    print(f"{args.shape}: {sum(t.numel() for t in model.parameters()) / 1e6:.1f} M parameters in {args.out}")


if __name__ == "__main__":
    main()
