"""The HTTP/JSON routes (`http_listen`) with a real HTTP client (urllib): /v1/score with
per-item outcomes, /v1/compare, OpenRLHF's /get_reward shape, errors as JSON with the
HTTP status of their gRPC code, and the same answers as gRPC.

Run by `tests/tests/python_client.rs` (COPL_HTTP: the main server's HTTP address).
"""

import json
import os
import urllib.error
import urllib.request

import pytest

from copl_client import CoplClient

HTTP = os.environ["COPL_HTTP"]
ADDR = os.environ["COPL_ADDR"]
SEEN = os.environ["COPL_SEEN_USER"]
PROMPT = "How do I keep a houseplant alive?"


def post(path, body, raw=None):
    """(status, JSON body) of a POST."""
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://{HTTP}{path}", data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def grpc_client():
    with CoplClient(ADDR, timeout=30.0) as c:
        yield c


def test_score_answers_per_item_as_grpc_does(grpc_client):
    status, body = post(
        "/v1/score",
        {
            "items": [
                {"user_id": SEEN, "prompt": PROMPT, "response": "Water it weekly."},
                {"user_id": SEEN, "prompt": PROMPT, "response": " "},
                {"user_id": "ghost", "prompt": PROMPT, "response": "Water it weekly."},
                {"prompt": PROMPT, "response": "Water it weekly."},
            ]
        },
    )
    assert status == 200, body
    good, blank, ghost, population = body["results"]
    assert good["reward"] == pytest.approx(
        grpc_client.score(SEEN, PROMPT, "Water it weekly.").reward, abs=1e-4
    )
    assert good["personalised"] and not good["user_unknown"]
    assert blank["error"]["code"] == "INVALID_ARGUMENT"
    assert blank["error"]["message"].startswith("items[1].response")
    assert ghost["error"]["code"] == "NOT_FOUND"
    assert not population["personalised"]
    status, body = post(
        "/v1/score",
        {"items": [{"user_id": "ghost", "prompt": PROMPT, "response": "x"}], "unknown_user": "population"},
    )
    assert status == 200 and body["results"][0]["user_unknown"], body


def test_compare_and_errors_as_json():
    status, body = post(
        "/v1/compare",
        {"user_id": SEEN, "prompt": PROMPT, "response_a": "Water it weekly.", "response_b": "Never."},
    )
    assert status == 200 and 0.0 <= body["probability_a_preferred"] <= 1.0, body
    status, body = post(
        "/v1/compare",
        {"user_id": "ghost", "prompt": PROMPT, "response_a": "a", "response_b": "b"},
    )
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND"), body
    # Not JSON of the route's shape: 400 naming where.
    status, body = post("/v1/score", None, raw=b'{"items": [{"prompt": 1}]}')
    assert (status, body["error"]["code"]) == (400, "INVALID_ARGUMENT"), body
    assert "body:" in body["error"]["message"]
    status, body = post("/v1/score", {"items": [], "surprise": 1})
    assert status == 400 and "surprise" in body["error"]["message"], body
    status, body = post("/v1/score", {"items": []})
    assert status == 400 and body["error"]["message"].startswith("items"), body
    with urllib.request.urlopen(f"http://{HTTP}/health", timeout=10) as r:
        assert r.status == 200 and r.read() == b"SERVING"


def test_openrlhf_get_reward(grpc_client):
    prompts = [PROMPT, PROMPT, PROMPT]
    queries = [PROMPT + "Water it weekly.", PROMPT + " ", "something else"]
    status, body = post(
        "/get_reward?users=labels",
        {"query": queries, "prompts": prompts, "labels": [SEEN, SEEN, SEEN]},
    )
    assert status == 200, body
    expected = grpc_client.score(SEEN, PROMPT, "Water it weekly.").reward
    assert body["rewards"][0] == pytest.approx(expected, abs=1e-4)
    assert body["rewards"][1:] == [0.0, 0.0] and body["scores"] == body["rewards"]
    assert body["extra_logs"]["copl_scored"] == [1.0, 0.0, 0.0]
    assert [u["index"] for u in body["unscored"]] == [1, 2]
    assert "does not start with prompts[2]" in body["unscored"][1]["message"]
    # No users given: the population; an unknown one: the population, flagged.
    status, body = post(
        "/get_reward",
        {"query": [PROMPT + "Water it weekly."], "prompts": [PROMPT], "user_ids": ["ghost"]},
    )
    assert status == 200 and body["extra_logs"]["copl_user_unknown"] == [1.0], body
    assert body["rewards"][0] == pytest.approx(
        grpc_client.score("", PROMPT, "Water it weekly.").reward, abs=1e-4
    )
    status, body = post("/get_reward", {"query": ["a"], "prompts": []})
    assert status == 400 and body["error"]["message"].startswith("prompts"), body
