"""The asyncio client (``AsyncCoplClient``) and the async TRL reward function against a
live server: the same answers as the blocking client; ScoreStream, GetUser and
SuggestSurvey in both; a retried OnboardUser whose first reply was lost comes back as
the caller's own write, not ALREADY_EXISTS.

Run by `tests/tests/python_client.rs` (COPL_ADDR, COPL_SEEN_USER, COPL_ANSWERS).
"""

import asyncio
import json
import os

import grpc
import pytest

from copl_client import (
    AsyncCoplClient,
    CoplClient,
    CoplError,
    ItemError,
    Score,
    async_reward_function,
)

ADDR = os.environ["COPL_ADDR"]
SEEN = os.environ["COPL_SEEN_USER"]
ANSWERS = [tuple(a) for a in json.loads(os.environ["COPL_ANSWERS"])]
PROMPT = "How do I keep a houseplant alive?"


def run(coroutine):
    return asyncio.run(coroutine)


@pytest.fixture()
def client():
    with CoplClient(ADDR, timeout=30.0) as c:
        yield c


def test_the_async_client_answers_as_the_blocking_one(client):
    async def main():
        async with AsyncCoplClient(ADDR, timeout=30.0) as aio:
            one = await aio.score(SEEN, PROMPT, "Water it weekly.")
            many = await aio.score_batch(
                [(SEEN, PROMPT, "Water it weekly."), (SEEN, PROMPT, " ")] * 3,
                chunk=2,
                per_item_errors=True,
            )
            compared = await aio.compare(SEEN, PROMPT, "Water it weekly.", "Never water it.")
            streamed = [s async for s in aio.score_stream([(SEEN, PROMPT, "Water it weekly."), ("nobody", PROMPT, "x")])]
            return one, many, compared, streamed

    one, many, compared, streamed = run(main())
    assert one.reward == pytest.approx(client.score(SEEN, PROMPT, "Water it weekly.").reward, abs=1e-4)
    assert [type(s) for s in many] == [Score, ItemError] * 3
    assert many[0].reward == pytest.approx(one.reward, abs=1e-4)
    assert compared.a.reward == pytest.approx(one.reward, abs=1e-4)
    assert isinstance(streamed[0], Score) and streamed[0].reward == pytest.approx(one.reward, abs=1e-4)
    assert isinstance(streamed[1], ItemError) and streamed[1].code == grpc.StatusCode.NOT_FOUND


def test_stream_user_and_survey_in_the_blocking_client(client):
    items = [(SEEN, PROMPT, t) for t in ("Water it weekly.", "Give it light.", "")]
    got = list(client.score_stream(iter(items)))
    assert isinstance(got[0], Score) and isinstance(got[2], ItemError)
    assert got[1].reward == pytest.approx(client.score(SEEN, PROMPT, "Give it light.").reward, abs=1e-4)
    seen = client.get_user(SEEN, include_embedding=True)
    assert seen.origin == "SEEN" and seen.personalised and len(seen.embedding) > 0
    assert all(isinstance(e, int) for _, e, _ in seen.routing) and seen.routing
    with pytest.raises(CoplError) as unknown:
        client.get_user("nobody")
    assert unknown.value.code == grpc.StatusCode.NOT_FOUND
    pairs = client.suggest_survey(3, seed=7)
    assert 1 <= len(pairs) <= 3
    assert all(p.a[0] != p.b[0] and p.prompt for p in pairs)
    # Adaptive: a pair answered is not suggested again.
    answered = (pairs[0].a[0], pairs[0].b[0])
    again = client.suggest_survey(3, answers_so_far=[answered], seed=7)
    assert all({p.a[0], p.b[0]} != set(answered) for p in again)


class _LoseFirstReply(grpc.UnaryUnaryClientInterceptor):
    """Lets the first OnboardUser reach the server and be answered, then reports
    UNAVAILABLE to the caller whatever the answer was, as if the reply had been lost on
    the way back."""

    def __init__(self):
        self.lost = False

    def intercept_unary_unary(self, continuation, details, request):
        outcome = continuation(details, request)
        if details.method.endswith("OnboardUser") and not self.lost:
            self.lost = True
            outcome.exception()  # waits for the server's answer, whatever it is

            class Lost(grpc.RpcError):
                def code(self):
                    return grpc.StatusCode.UNAVAILABLE

                def details(self):
                    return "connection reset (simulated)"

            raise Lost()
        return outcome


def test_a_retried_onboarding_whose_reply_was_lost_is_the_callers_own_write(client):
    user = "python-lost-reply"
    lossy = _LoseFirstReply()
    channel = grpc.intercept_channel(grpc.insecure_channel(ADDR), lossy)
    retrying = CoplClient(channel=channel, timeout=30.0, retries=2, backoff=0.01)
    got = retrying.onboard(user, ANSWERS)
    assert lossy.lost and got.recovered and got.user_id == user
    assert client.get_user(user).answers == len(ANSWERS)
    # Someone else's earlier write stays ALREADY_EXISTS, lost reply or not.
    other = _LoseFirstReply()
    retrying = CoplClient(
        channel=grpc.intercept_channel(grpc.insecure_channel(ADDR), other),
        timeout=30.0,
        retries=2,
        backoff=0.01,
    )
    with pytest.raises(CoplError) as taken:
        retrying.onboard(user, ANSWERS[:-1])
    assert taken.value.code == grpc.StatusCode.ALREADY_EXISTS
    client.delete_user(user)


def test_the_async_reward_function_gives_none_where_it_cannot_score(client):
    async def main():
        async with AsyncCoplClient(ADDR, timeout=30.0) as aio:
            reward = async_reward_function(aio)
            got = await reward(
                prompts=[PROMPT, [{"role": "user", "content": PROMPT}], PROMPT],
                completions=["Water it weekly.", [{"role": "assistant", "content": "Water it weekly."}], ""],
                user_id=[SEEN, SEEN, SEEN],
            )
            return got, reward.stats

    got, stats = run(main())
    expected = client.score(SEEN, PROMPT, "Water it weekly.").reward
    assert got[0] == pytest.approx(expected, abs=1e-4) and got[1] == pytest.approx(expected, abs=1e-4)
    assert got[2] is None and stats["scored"] == 2
