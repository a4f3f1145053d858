"""Hostile traffic against a copl-server (issue #15), from the Python client's generated
stubs (scripts/python-client.sh venv). Each mode sends one kind of request a hostile or
careless client would, CONCURRENCY at a time, COUNT times or for DURATION seconds, and
prints a JSON line of what came back (status codes counted):

  big      Score with a BYTES-long response (default 4 000 000: the message stays under
           the default 4 MiB limit) and truncate: true
  unauth   ScoreBatch of empty items filling 4 MiB (the default message limit), sent
           without an API key
  mixed    the soak's hostile share, in turn: big, unauth, a Score with a grpc-timeout
           beyond any clock, a ScoreBatch over max_batch_items, an over-long user id,
           a Score with a wrong key

  python scripts/hostile_client.py --addr 127.0.0.1:50051 --key KEY big --count 20
"""
import argparse
import collections
import concurrent.futures
import json
import sys
import threading
import time

import grpc
from copl_client.v1 import reward_pb2 as pb
from copl_client.v1 import reward_pb2_grpc as rpc

MIB = 1 << 20


def big_score(stub, key, size):
    text = "a " * (size // 2)  # 4 MB of text: two bytes a token-ish word
    return stub.Score.with_call(
        pb.ScoreRequest(prompt="Which is better?", response=text, truncate=True),
        metadata=[("authorization", f"Bearer {key}")], timeout=30)


def unauth_batch(stub, key, size):
    # An empty ScoreItem is 2 bytes on the wire (field 1's tag, length 0): as many as fit
    # in 4 MiB, written as bytes (two million message objects would cost the client
    # seconds), sent without a key.
    body = b"\x0a\x00" * (4 * MIB // 2)
    return stub.raw_score_batch.with_call(body, timeout=30)


def huge_timeout(stub, key, size):
    # grpcio reads a grpc-timeout in the metadata as the call's deadline and sends its own
    # encoding of it: 99999999H is the longest the header's grammar allows (8 digits,
    # hours). Longer forms (u64 seconds and past) cannot be sent from grpcio; the
    # server's unit and property tests (server/src/service/fields.rs) cover them.
    return stub.Score.with_call(
        pb.ScoreRequest(prompt="p", response="r"),
        metadata=[("authorization", f"Bearer {key}"), ("grpc-timeout", "99999999H")])


def over_batch(stub, key, size):
    items = [pb.ScoreItem(prompt="p", response="r") for _ in range(5000)]
    return stub.ScoreBatch.with_call(
        pb.ScoreBatchRequest(items=items),
        metadata=[("authorization", f"Bearer {key}")], timeout=30)


def long_user(stub, key, size):
    return stub.Score.with_call(
        pb.ScoreRequest(user_id="é" * 5000, prompt="p", response="r"),
        metadata=[("authorization", f"Bearer {key}")], timeout=30)


def wrong_key(stub, key, size):
    return stub.Score.with_call(
        pb.ScoreRequest(prompt="p", response="r"),
        metadata=[("authorization", "Bearer not-a-key")], timeout=30)


MODES = {
    "big": [big_score],
    "unauth": [unauth_batch],
    "mixed": [big_score, unauth_batch, huge_timeout, over_batch, long_user, wrong_key],
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", default="127.0.0.1:50051")
    ap.add_argument("--key", default="")
    ap.add_argument("--bytes", type=int, default=0)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--count", type=int, default=0, help="calls in all (0: until --duration)")
    ap.add_argument("--duration", type=float, default=0.0)
    ap.add_argument("--pause", type=float, default=0.0, help="seconds each worker waits between calls")
    ap.add_argument("mode", choices=sorted(MODES))
    a = ap.parse_args()
    size = a.bytes or 4_000_000
    options = [("grpc.max_send_message_length", 64 * MIB),
               ("grpc.max_receive_message_length", 64 * MIB)]
    channel = grpc.insecure_channel(a.addr, options=options)
    stub = rpc.RewardServiceStub(channel)
    stub.raw_score_batch = channel.unary_unary(
        "/copl.v1.RewardService/ScoreBatch",
        request_serializer=lambda body: body,
        response_deserializer=pb.ScoreBatchResponse.FromString)
    calls = MODES[a.mode]
    codes = collections.Counter()
    lock = threading.Lock()
    sent = [0]
    end = time.monotonic() + a.duration if a.duration else None

    def take():
        with lock:
            if a.count and sent[0] >= a.count:
                return None
            if end and time.monotonic() >= end:
                return None
            sent[0] += 1
            return sent[0]

    def worker():
        while (n := take()) is not None:
            call = calls[n % len(calls)]
            try:
                call(stub, a.key, size)
                code = "OK"
            except grpc.RpcError as e:
                code = e.code().name
            with lock:
                codes[f"{call.__name__}:{code}"] += 1
            if a.pause:
                time.sleep(a.pause)

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(a.concurrency) as pool:
        for f in [pool.submit(worker) for _ in range(a.concurrency)]:
            f.result()
    print(json.dumps({"mode": a.mode, "calls": sent[0], "bytes": size if a.mode != "unauth" else 4 * MIB,
                      "seconds": round(time.monotonic() - started, 3), "codes": dict(codes)}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
