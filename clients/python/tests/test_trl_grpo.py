"""The TRL reward function inside TRL itself (trl, torch and transformers from PyPI in the
client's test venv: scripts/python-client.sh venv), against the live server of
`tests/tests/python_client.rs`.

A GRPOTrainer on a tiny causal LM built from a config (no hub: nothing is downloaded)
with a word-level tokenizer made here calls `copl_client.reward_function`:
- through TRL's own reward path (`GRPOTrainer._calculate_rewards`, which turns a `None`
  into NaN) on a plain batch with an empty completion and an unknown user, and on a
  conversational batch;
- through one real training step, whose reward column carries the dataset's `user_id`.
"""

import math
import os

import pytest
import torch
from datasets import Dataset
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
from trl import GRPOConfig, GRPOTrainer

from copl_client import CoplClient, reward_function

ADDR = os.environ["COPL_ADDR"]
SEEN = os.environ["COPL_SEEN_USER"]
PROMPT = "How do I keep a houseplant alive?"
WORDS = "how do i keep a houseplant alive ? water it weekly . give light mist".split()


def tiny_tokenizer():
    specials = ["<pad>", "<eos>", "<unk>"]
    vocab = {w: i for i, w in enumerate(specials + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )
    # A chat template, so TRL takes conversational prompts.
    fast.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    return fast


def tiny_model(tokenizer):
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return Qwen2ForCausalLM(config)


@pytest.fixture(scope="module")
def client():
    with CoplClient(ADDR, timeout=30.0) as c:
        yield c


def trainer_for(client, tmp_path, reward, dataset):
    tokenizer = tiny_tokenizer()
    config = GRPOConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=4,
        max_steps=1,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        seed=0,
    )
    return GRPOTrainer(
        model=tiny_model(tokenizer),
        reward_funcs=[reward],
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
    )


def test_trls_reward_path_gives_nan_where_a_sample_cannot_be_scored(client, tmp_path):
    reward = reward_function(client)
    dataset = Dataset.from_dict({"prompt": [PROMPT] * 4, "user_id": [SEEN] * 4})
    trainer = trainer_for(client, tmp_path, reward, dataset)

    # Plain samples: one scored, one blank completion, one unknown user, one population.
    prompts = [PROMPT] * 4
    completions = ["Water it weekly.", "   ", "Give it light.", "Mist it."]
    inputs = [
        {"prompt": p, "completion": c, "user_id": u}
        for p, c, u in zip(prompts, completions, [SEEN, SEEN, "nobody-at-all", ""])
    ]
    rewards = trainer._calculate_rewards(inputs, prompts, completions, [[0]] * 4)[:, 0]
    expected = client.score(SEEN, PROMPT, "Water it weekly.").reward
    assert abs(rewards[0].item() - expected) < 1e-4
    assert math.isnan(rewards[1].item())  # blank completion: None → NaN
    assert math.isnan(rewards[2].item())  # unknown user: None → NaN
    assert math.isfinite(rewards[3].item())  # empty user id: the population reward
    not_scored = sum(n for k, n in reward.stats.items() if k.startswith("not_scored:"))
    assert reward.stats["scored"] == 2 and not_scored == 2, reward.stats

    # Conversational samples (TRL's message lists), rendered in the server's template.
    conv_prompts = [
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}]
    ] * 2
    conv_completions = [[{"role": "assistant", "content": "Water it weekly."}]] * 2
    inputs = [
        {"prompt": p, "completion": c, "user_id": SEEN}
        for p, c in zip(conv_prompts, conv_completions)
    ]
    rewards = trainer._calculate_rewards(inputs, conv_prompts, conv_completions, [[0]] * 2)
    assert all(math.isfinite(r) for r in rewards[:, 0].tolist())
    assert abs(rewards[0, 0].item() - rewards[1, 0].item()) < 1e-5


def test_a_grpo_step_calls_the_reward_function_for_each_samples_user(client, tmp_path):
    reward = reward_function(client)
    seen_calls = []

    def recorded(prompts, completions, **kwargs):
        out = reward(prompts, completions, **kwargs)
        seen_calls.append((list(kwargs["user_id"]), out))
        return out

    recorded.__name__ = "copl_reward"
    dataset = Dataset.from_dict(
        {"prompt": [PROMPT, PROMPT], "user_id": [SEEN, "nobody-at-all"]}
    )
    trainer = trainer_for(client, tmp_path, recorded, dataset)
    trainer.train()  # one step; never raises for the unknown user
    assert seen_calls, "GRPOTrainer never called the reward function"
    for users, out in seen_calls:
        for user, value in zip(users, out):
            if user == "nobody-at-all":
                assert value is None
            elif value is not None:  # None only for a blank generated completion
                assert math.isfinite(value)
