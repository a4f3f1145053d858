"""Builds tokenizer.json for a Gemma 3 GGUF from the GGUF's own vocabulary
(`tokenizer.ggml.*`), with Hugging Face transformers' GGUF converter; run by
scripts/fetch-backbone.sh at setup time (needs gguf and transformers; no torch).

    python scripts/gguf_tokenizer.py MODEL.gguf OUT/tokenizer.json
"""
import sys

from gguf import GGUFReader
from transformers.integrations.gguf.gguf_tokenizer_mapping import convert_gguf_tokenizer


def main(path, out):
    fields = GGUFReader(path).fields

    def scalar(key):
        f = fields[key]
        return f.parts[f.data[0]][0].item()

    def array(key, decode):
        f = fields[key]
        return [decode(f.parts[i]) for i in f.data]

    params = {
        "tokenizer_type": bytes(fields["tokenizer.ggml.model"].parts[fields["tokenizer.ggml.model"].data[0]]).decode(),
        "tokens": array("tokenizer.ggml.tokens", lambda p: bytes(p).decode("utf-8")),
        "scores": array("tokenizer.ggml.scores", lambda p: float(p[0])),
        "token_type": array("tokenizer.ggml.token_type", lambda p: int(p[0])),
        "bos_token_id": scalar("tokenizer.ggml.bos_token_id"),
        "eos_token_id": scalar("tokenizer.ggml.eos_token_id"),
        "unk_token_id": scalar("tokenizer.ggml.unknown_token_id"),
        "pad_token_id": scalar("tokenizer.ggml.padding_token_id"),
        "add_prefix_space": bool(scalar("tokenizer.ggml.add_space_prefix")),
    }
    tokenizer, _ = convert_gguf_tokenizer("gemma3", params)
    tokenizer.save(out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
