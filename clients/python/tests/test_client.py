"""The Python client against a live copl-server.

Run by `tests/tests/python_client.rs` (part of `make test`), which builds a tiny
checkpoint, starts the server and sets COPL_ADDR (its address), COPL_SEEN_USER (a seen
user) and COPL_ANSWERS (an unseen user's answers, JSON [[chosen, rejected], ...]).
"""

import json
import math
import os
import pathlib
import subprocess
import tempfile

import grpc
import pytest

from copl_client import CoplClient, CoplError, ItemError, Score, reward_function

ADDR = os.environ["COPL_ADDR"]
SEEN = os.environ["COPL_SEEN_USER"]
ANSWERS = [tuple(a) for a in json.loads(os.environ["COPL_ANSWERS"])]
PROMPT = "How do I keep a houseplant alive?"
ROOT = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture()
def client():
    with CoplClient(ADDR, timeout=30.0) as c:
        yield c


def test_score_seen_user_and_population(client):
    seen = client.score(SEEN, PROMPT, "Water it weekly.")
    assert math.isfinite(seen.reward)
    assert seen.personalised
    assert seen.input_tokens > 5
    population = client.score("", PROMPT, "Water it weekly.")
    assert not population.personalised


def test_score_batch_matches_single_scores_in_chunks(client):
    texts = ["Water it weekly.", "Give it light.", "Ignore it.", "Repot it in spring.", "x"]
    items = [(SEEN if i % 2 == 0 else "", PROMPT, t) for i, t in enumerate(texts)]
    batch = client.score_batch(items, chunk=2)
    assert len(batch) == len(items)
    for (user, prompt, text), got in zip(items, batch):
        assert abs(client.score(user, prompt, text).reward - got.reward) < 1e-4


def test_compare_is_the_sigmoid_of_the_reward_margin(client):
    c = client.compare(SEEN, PROMPT, "Water it weekly.", "Never water it.")
    margin = c.a.reward - c.b.reward
    assert abs(c.probability_a_preferred - 1 / (1 + math.exp(-margin))) < 1e-4


def test_onboard_score_and_delete_a_new_user(client):
    user = "python-new-user"
    onboarded = client.onboard(user, ANSWERS)
    assert onboarded.user_id == user
    assert onboarded.answers_used >= 1
    assert 0.0 <= onboarded.confidence <= 1.0
    assert onboarded.fallback in {"NONE", "WIDENED_HOPS", "SIGNED_NEIGHBOURS", "POPULATION"}
    assert math.isfinite(client.score(user, PROMPT, "Water it weekly.").reward)
    with pytest.raises(CoplError) as again:
        client.onboard(user, ANSWERS)
    assert again.value.code == grpc.StatusCode.ALREADY_EXISTS
    client.onboard(user, ANSWERS, replace=True)
    client.delete_user(user)
    with pytest.raises(CoplError) as gone:
        client.score(user, PROMPT, "x")
    assert gone.value.code == grpc.StatusCode.NOT_FOUND
    assert user in gone.value.message


def test_bad_input_names_the_field_and_is_not_retried(client):
    with pytest.raises(CoplError) as bad:
        client.score(SEEN, PROMPT, "")
    assert bad.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert bad.value.message.startswith("response")


class _Counter(grpc.UnaryUnaryClientInterceptor):
    def __init__(self):
        self.calls = 0

    def intercept_unary_unary(self, continuation, details, request):
        self.calls += 1
        return continuation(details, request)


def test_unavailable_is_retried_with_backoff():
    counter = _Counter()
    # A port nobody listens on: every attempt is UNAVAILABLE.
    channel = grpc.intercept_channel(grpc.insecure_channel("127.0.0.1:1"), counter)
    client = CoplClient(channel=channel, timeout=2.0, retries=2, backoff=0.01)
    with pytest.raises(CoplError) as down:
        client.score("", PROMPT, "x")
    assert down.value.code == grpc.StatusCode.UNAVAILABLE
    assert counter.calls == 3


def test_a_per_item_batch_fails_only_the_bad_items(client):
    items = [
        (SEEN, PROMPT, "Water it weekly."),
        (SEEN, PROMPT, "   "),
        ("ghost-user", PROMPT, "Water it weekly."),
    ]
    good, blank, ghost = client.score_batch(items, per_item_errors=True)
    assert isinstance(good, Score) and good.personalised
    assert abs(good.reward - client.score(SEEN, PROMPT, "Water it weekly.").reward) < 1e-4
    assert isinstance(blank, ItemError) and blank.code == grpc.StatusCode.INVALID_ARGUMENT
    assert blank.message.startswith("items[1].response")
    assert isinstance(ghost, ItemError) and ghost.code == grpc.StatusCode.NOT_FOUND
    # Without per-item outcomes the call fails whole, naming the item.
    with pytest.raises(CoplError) as whole:
        client.score_batch(items)
    assert whole.value.message.startswith("items[1].response")
    # The population for unknown users, only when asked, and flagged.
    flagged = client.score("ghost-user", PROMPT, "Water it weekly.", unknown_user="population")
    assert flagged.user_unknown and not flagged.personalised
    assert flagged.reward == pytest.approx(client.score("", PROMPT, "Water it weekly.").reward)
    with pytest.raises(ValueError):
        client.score(SEEN, PROMPT, "x", unknown_user="populace")


def test_trl_reward_function_scores_each_sample_for_its_user(client):
    reward = reward_function(client)
    prompts = [PROMPT, PROMPT, [{"role": "user", "content": PROMPT}], PROMPT, PROMPT]
    completions = [
        "Water it weekly.",
        "Give it light.",
        [{"role": "assistant", "content": "Water it weekly."}],
        "",
        "Water it weekly.",
    ]
    users = [SEEN, "", SEEN, SEEN, "ghost-user"]
    got = reward(prompts=prompts, completions=completions, user_id=users, completion_ids=None)
    assert got[3] is None and got[4] is None, got
    assert all(isinstance(r, float) for r in got[:3]), got
    assert abs(got[0] - client.score(SEEN, PROMPT, "Water it weekly.").reward) < 1e-4
    assert abs(got[1] - client.score("", PROMPT, "Give it light.").reward) < 1e-4
    # A one-turn conversation is its text: the same input as the first sample.
    assert abs(got[2] - got[0]) < 1e-4
    assert reward.stats["scored"] == 3 and reward.stats["population"] == 1
    assert reward.stats["not_scored:INVALID_ARGUMENT"] == 1
    assert reward.stats["not_scored:NOT_FOUND"] == 1
    # Unknown users may get the population reward instead, flagged and counted.
    lenient = reward_function(client, unknown_user="population")
    assert lenient([PROMPT], ["Give it light."], user_id=["ghost-user"])[0] == pytest.approx(
        got[1], abs=1e-4
    )
    assert lenient.stats["unknown_user_population"] == 1


def test_trl_reward_function_is_explicit_about_user_ids(client):
    reward = reward_function(client)
    # A mistyped column is an error, not the population for everyone.
    with pytest.raises(KeyError) as mistyped:
        reward([PROMPT], ["Give it light."], user=[SEEN])
    assert "user_id" in str(mistyped.value) and "'user'" in str(mistyped.value)
    # Integer ids are their decimal strings (here unknown: None); other types raise.
    assert reward([PROMPT], ["x"], user_id=[12345]) == [None]
    assert reward.stats["not_scored:NOT_FOUND"] == 1
    with pytest.raises(TypeError):
        reward([PROMPT], ["x"], user_id=[1.5])
    # A missing id: the population reward by default, None when asked.
    population = client.score("", PROMPT, "Give it light.").reward
    assert reward([PROMPT], ["Give it light."], user_id=[None])[0] == pytest.approx(population)
    strict = reward_function(client, missing_user="none")
    assert strict([PROMPT], ["Give it light."], user_id=[None]) == [None]
    # user_key=None: every sample the population.
    everyone = reward_function(client, user_key=None)
    assert everyone([PROMPT], ["Give it light."])[0] == pytest.approx(population)


def test_trl_conversations_render_with_the_servers_template(client):
    reward = reward_function(client)
    conversation = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "I have a fern."},
        {"role": "assistant", "content": [{"type": "text", "text": "Nice."}]},
        {"role": "user", "content": PROMPT},
    ]
    image = [{"role": "user", "content": [{"type": "image", "url": "x.png"}]}]
    got = reward(
        [conversation, image],
        [[{"role": "assistant", "content": "Water it weekly."}]] * 2,
        user_id=[SEEN, SEEN],
    )
    # The test checkpoint is BERT's sentence pair: the turns labelled in the prompt.
    rendered = "System: Answer briefly.\n\nUser: I have a fern.\n\nAssistant: Nice.\n\nUser: " + PROMPT
    assert got[0] == pytest.approx(client.score(SEEN, rendered, "Water it weekly.").reward, abs=1e-4)
    assert got[1] is None
    assert reward.stats["not_scored:content part of type 'image' is not text"] == 1


def test_generated_stubs_match_the_proto():
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [str(ROOT / "scripts/python-client.sh"), "generate-into", out],
            check=True,
            cwd=ROOT,
        )
        committed = ROOT / "clients/python/copl_client/v1"
        for name in ["reward_pb2.py", "reward_pb2_grpc.py", "reward_pb2.pyi"]:
            assert (pathlib.Path(out) / name).read_bytes() == (committed / name).read_bytes(), (
                f"{name} is stale: run scripts/python-client.sh gen"
            )
