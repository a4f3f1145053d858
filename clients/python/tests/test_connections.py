"""How the client reaches servers: round robin over every address a target resolves to
(two live replicas, each counting its calls in its metrics), bare ``host:port`` and
``http://`` targets, and mutual TLS against a server that checks client certificates.

Run by `tests/tests/python_client.rs`, which starts the servers and sets COPL_REPLICAS
(two plaintext replicas), COPL_METRICS (their metrics listeners), COPL_TLS_ADDR (a
mutual-TLS server, `localhost:port`), COPL_TLS_CA, COPL_TLS_CLIENT and
COPL_TLS_STRANGER (`cert,key` paths: one the CA signed, one another CA signed).
"""

import math
import os
import re
import urllib.request

import grpc
import pytest

from copl_client import AsyncCoplClient, CoplClient, CoplError

REPLICAS = os.environ["COPL_REPLICAS"].split(",")
METRICS = os.environ["COPL_METRICS"].split(",")
SEEN = os.environ["COPL_SEEN_USER"]
PROMPT = "How do I keep a houseplant alive?"


def scores_served(metrics: str) -> int:
    text = urllib.request.urlopen(f"http://{metrics}/metrics", timeout=10).read().decode()
    found = re.search(r'^copl_requests_total\{rpc="Score",code="Ok"\} (\d+)', text, re.M)
    return int(found.group(1)) if found else 0


def test_round_robin_spreads_calls_over_every_address():
    # What a headless Service's DNS name resolves to, given to gRPC's resolver directly
    # (no test name resolves to two addresses here): the same address list, the same
    # round-robin policy.
    target = "ipv4:" + ",".join(REPLICAS)
    before = [scores_served(m) for m in METRICS]
    with CoplClient(target, timeout=30.0) as client:
        for _ in range(20):
            assert math.isfinite(client.score(SEEN, PROMPT, "Water it weekly.").reward)
    served = [scores_served(m) - b for m, b in zip(METRICS, before)]
    assert sum(served) == 20 and min(served) >= 5, served
    # gRPC's own default (pick_first) keeps every call on one replica.
    before = [scores_served(m) for m in METRICS]
    with CoplClient(target, timeout=30.0, load_balancing="pick_first") as client:
        for _ in range(10):
            client.score(SEEN, PROMPT, "Water it weekly.")
    served = sorted(scores_served(m) - b for m, b in zip(METRICS, before))
    assert served == [0, 10], served


def test_targets_as_host_port_and_http_urls():
    host, port = REPLICAS[0].rsplit(":", 1)
    for target in (f"localhost:{port}", f"http://{host}:{port}"):
        with CoplClient(target, timeout=30.0) as client:
            assert client.score("", PROMPT, "Water it weekly.").input_tokens > 0
    with pytest.raises(ValueError):
        CoplClient(REPLICAS[0], load_balancing="random")


def _pem(paths: str):
    cert, key = paths.split(",")
    return open(cert, "rb").read(), open(key, "rb").read()


def test_mutual_tls_with_the_blocking_and_the_async_client():
    ca = open(os.environ["COPL_TLS_CA"], "rb").read()
    cert, key = _pem(os.environ["COPL_TLS_CLIENT"])
    target = os.environ["COPL_TLS_ADDR"]
    with CoplClient(
        target, timeout=30.0, root_certificates=ca, certificate_chain=cert, private_key=key
    ) as client:
        assert client.score(SEEN, PROMPT, "Water it weekly.").personalised

    async def through_aio():
        async with AsyncCoplClient(
            f"https://{target}",
            timeout=30.0,
            root_certificates=ca,
            certificate_chain=cert,
            private_key=key,
        ) as client:
            return await client.score(SEEN, PROMPT, "Water it weekly.")

    import asyncio

    assert asyncio.run(through_aio()).personalised
    # Without a certificate, or with another CA's, the server refuses the connection.
    stranger_cert, stranger_key = _pem(os.environ["COPL_TLS_STRANGER"])
    for identity in ({}, {"certificate_chain": stranger_cert, "private_key": stranger_key}):
        with CoplClient(
            target, timeout=5.0, retries=0, root_certificates=ca, **identity
        ) as client:
            with pytest.raises(CoplError) as refused:
                client.score(SEEN, PROMPT, "x")
            assert refused.value.code == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(ValueError):
        CoplClient(target, certificate_chain=cert)
