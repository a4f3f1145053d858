"""Reference token ids for core/tests/gemma270m.rs from Google's sentencepiece (an
implementation independent of the Hugging Face tokenizers crate), fed the vocabulary,
scores and piece types of the Gemma 3 270M GGUF (user-defined whitespace pieces with
their spaces escaped, as sentencepiece matches them after escaping).

    python scripts/gemma_tokenizer_reference.py   # needs gguf, sentencepiece, protobuf
"""
from gguf import GGUFReader
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb
import json, sys
r = GGUFReader("backbones/gemma3-270m/model.gguf")
f = r.fields
tokens = [bytes(f["tokenizer.ggml.tokens"].parts[i]).decode("utf-8") for i in f["tokenizer.ggml.tokens"].data]
scores = [float(f["tokenizer.ggml.scores"].parts[i][0]) for i in f["tokenizer.ggml.scores"].data]
types = [int(f["tokenizer.ggml.token_type"].parts[i][0]) for i in f["tokenizer.ggml.token_type"].data]
m = pb.ModelProto()
m.trainer_spec.model_type = pb.TrainerSpec.BPE
m.trainer_spec.byte_fallback = True
m.trainer_spec.unk_id = 3; m.trainer_spec.bos_id = 2; m.trainer_spec.eos_id = 1; m.trainer_spec.pad_id = 0
m.normalizer_spec.name = "identity"
m.normalizer_spec.add_dummy_prefix = False
m.normalizer_spec.remove_extra_whitespaces = False
m.normalizer_spec.escape_whitespaces = True
tmap = {1: pb.ModelProto.SentencePiece.NORMAL, 2: pb.ModelProto.SentencePiece.UNKNOWN, 3: pb.ModelProto.SentencePiece.CONTROL,
        4: pb.ModelProto.SentencePiece.USER_DEFINED, 5: pb.ModelProto.SentencePiece.UNUSED, 6: pb.ModelProto.SentencePiece.BYTE}
for t, s, ty in zip(tokens, scores, types):
    p = m.pieces.add(); p.piece = t.replace(" ", "\u2581") if ty == 4 else t; p.score = s; p.type = tmap[ty]
sp = spm.SentencePieceProcessor(model_proto=m.SerializeToString())
sentences = ["The capital of France is", "Hello world! 日本語 ünïcödé  spaces", "def f(x):\n    return x * 2",
             "Prices rose 12.5% in 2024 — «quoted» text, emoji 🙂."]
print(json.dumps([[s, sp.encode(s)] for s in sentences], ensure_ascii=False))
