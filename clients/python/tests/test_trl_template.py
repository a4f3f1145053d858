"""The TRL reward function's rendering of conversations, without a server: a chat
format (Gemma's) writes earlier turns as turns of that format."""

import pytest

from copl_client.trl import Template, Unscorable

GEMMA = (
    "<bos><start_of_turn>user\n{prompt}<end_of_turn>\n<start_of_turn>model\n{response}"
    "<end_of_turn>"
)


def filled(template: str, prompt: str, response: str) -> str:
    """What the server's template makes of (prompt, response)."""
    return template.replace("{prompt}", prompt).replace("{response}", response)


def test_a_conversation_becomes_turns_of_the_chat_format():
    t = Template(GEMMA)
    prompt = t.prompt(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]},
            {"role": "user", "content": "Plants?"},
        ]
    )
    assert filled(GEMMA, prompt, "Water.") == (
        "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
        "<start_of_turn>model\nHello<end_of_turn>\n"
        "<start_of_turn>user\nPlants?<end_of_turn>\n"
        "<start_of_turn>model\nWater.<end_of_turn>"
    )


def test_one_user_turn_is_its_text_in_either_template():
    for t in (Template(GEMMA), Template("pair: [CLS] prompt [SEP] response [SEP]")):
        assert t.prompt([{"role": "user", "content": "Hi"}]) == "Hi"
        assert t.prompt("Hi") == "Hi"
        assert t.completion([{"role": "assistant", "content": "ok"}]) == "ok"


def test_content_none_is_empty_and_non_text_parts_are_unscorable():
    t = Template("pair")
    assert t.prompt([{"role": "user", "content": None}]) == ""
    with pytest.raises(Unscorable):
        t.prompt([{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}])
    with pytest.raises(Unscorable):
        Template(GEMMA).prompt(
            [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
        )
