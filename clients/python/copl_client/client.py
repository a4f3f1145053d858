"""The blocking client: ``CoplClient``. ``aio.AsyncCoplClient`` has the same methods as
coroutines; both build their requests and read their replies in ``calls``."""

from __future__ import annotations

import random
import time
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import grpc

from . import calls
from .calls import (
    RETRYABLE,
    Answer,
    Comparison,
    CoplError,
    Item,
    ItemError,
    Onboarded,
    Score,
    SurveyPair,
    UserInfo,
)
from .v1 import reward_pb2 as pb
from .v1 import reward_pb2_grpc as pb_grpc


class CoplClient:
    """A connection to CoPL-serve: one server, a load balancer, or every address a name
    resolves to (round robin: a headless Service's pods all get calls).

    ``target``: ``host:port``, ``http://…`` (plaintext), ``https://…`` (TLS with the
    system's roots), or a gRPC target (``dns:///…``, ``ipv4:a:p,b:p``). ``timeout`` is
    each attempt's deadline in seconds; a call answered UNAVAILABLE or
    RESOURCE_EXHAUSTED is tried up to ``retries`` more times with jittered exponential
    back-off from ``backoff`` seconds (OnboardUser and DeleteUser too: a retry never
    turns the caller's own landed write into an error, see ``onboard``). ``api_key`` is
    sent as ``authorization: Bearer``; ``root_certificates`` (PEM, the server's CA)
    connects with TLS, ``certificate_chain`` + ``private_key`` add a client certificate
    (mutual TLS; docs/security.md).
    """

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.1,
        api_key: Optional[str] = None,
        channel: Optional[grpc.Channel] = None,
        max_message_bytes: int = 4 << 20,
        root_certificates: Optional[bytes] = None,
        certificate_chain: Optional[bytes] = None,
        private_key: Optional[bytes] = None,
        load_balancing: str = "round_robin",
    ):
        self._own_channel = channel is None
        if channel is None:
            c = calls.channel(
                target,
                max_message_bytes=max_message_bytes,
                root_certificates=root_certificates,
                certificate_chain=certificate_chain,
                private_key=private_key,
                load_balancing=load_balancing,
            )
            channel = (
                grpc.secure_channel(c.target, c.credentials, options=c.options)
                if c.credentials
                else grpc.insecure_channel(c.target, options=c.options)
            )
        self._channel = channel
        self._stub = pb_grpc.RewardServiceStub(self._channel)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()

    def close(self) -> None:
        if self._own_channel:
            self._channel.close()

    def __enter__(self) -> "CoplClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _send(self, call: calls.Call, timeout: Optional[float] = None):
        method = getattr(self._stub, call.method)
        attempt, lost = 0, False
        while True:
            try:
                reply = method(
                    call.request,
                    timeout=self.timeout if timeout is None else timeout,
                    metadata=self._metadata,
                )
                return call.read(reply)
            except grpc.RpcError as e:
                code = e.code()
                if code in RETRYABLE and attempt < self.retries:
                    lost = lost or code == grpc.StatusCode.UNAVAILABLE
                    time.sleep(calls.backoff(attempt, self.backoff, random.random()))
                    attempt += 1
                    continue
                raise CoplError(code, e.details() or "", after_lost_reply=lost) from None

    def score(
        self,
        user_id: str,
        prompt: str,
        response: str,
        *,
        truncate: bool = True,
        unknown_user: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Score:
        """The reward of ``response`` to ``prompt`` for ``user_id`` ("" = population).
        ``unknown_user="population"`` scores an unknown id with the population reward
        (``Score.user_unknown`` says so) instead of NOT_FOUND."""
        return self._send(calls.score(user_id, prompt, response, truncate, unknown_user), timeout)

    def score_batch(
        self,
        items: Iterable[Item],
        *,
        truncate: bool = True,
        chunk: int = 256,
        per_item_errors: bool = False,
        unknown_user: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> List[Union[Score, ItemError]]:
        """Rewards of ``(user_id, prompt, response)`` items, in order; sent in calls of
        at most ``chunk`` items (the server's ``max_batch_items`` is 256 by default).

        By default one bad item fails the call (``CoplError`` naming ``items[i]``); with
        ``per_item_errors`` each item is a ``Score`` or an ``ItemError`` and one bad
        item (a blank completion, an unknown user, an over-long text) never fails the
        others. ``unknown_user`` as in ``score``."""
        items = list(items)
        scores: List[Union[Score, ItemError]] = []
        for start in range(0, len(items), max(1, chunk)):
            part = items[start : start + chunk]
            call = calls.score_batch(part, truncate, per_item_errors, unknown_user)
            scores.extend(self._send(call, timeout))
        return scores

    def score_stream(
        self,
        items: Iterable[Item],
        *,
        truncate: bool = True,
        unknown_user: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Iterator[Union[Score, ItemError]]:
        """Scores ``items`` over one ScoreStream as they come (an iterator may be
        endless), yielding a ``Score`` or an ``ItemError`` per item in the order sent.
        Not retried: a stream that fails raises ``CoplError`` where it stands."""
        requests = (
            calls.stream_request(i, item, truncate, unknown_user) for i, item in enumerate(items)
        )
        replies = self._stub.ScoreStream(requests, timeout=timeout, metadata=self._metadata)
        try:
            for reply in replies:
                yield calls.stream_result(reply)
        except grpc.RpcError as e:
            raise CoplError(e.code(), e.details() or "") from None

    def compare(
        self,
        user_id: str,
        prompt: str,
        response_a: str,
        response_b: str,
        *,
        truncate: bool = True,
        unknown_user: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Comparison:
        """Which of two responses ``user_id`` prefers (Bradley–Terry probability)."""
        call = calls.compare(user_id, prompt, response_a, response_b, truncate, unknown_user)
        return self._send(call, timeout)

    def onboard(
        self,
        user_id: str,
        answers: Sequence[Answer],
        *,
        replace: bool = False,
        hops: Optional[int] = None,
        temperature: Optional[float] = None,
        timeout: Optional[float] = None,
    ) -> Onboarded:
        """Onboards a new user from pairwise answers (no optimisation: paper eq. 11).

        Retried like every call. Where an attempt's reply was lost (UNAVAILABLE) and
        the retry answers ALREADY_EXISTS, the stored user is looked up: if it is this
        call's own write (``calls.own_write``) the result says ``recovered``, else the
        ALREADY_EXISTS stands."""
        first_sent_ms = int(time.time() * 1000)
        try:
            return self._send(calls.onboard(user_id, answers, replace, hops, temperature), timeout)
        except CoplError as e:
            if not (e.after_lost_reply and e.code == grpc.StatusCode.ALREADY_EXISTS):
                raise
            stored = self.get_user(user_id, timeout=timeout)
            if calls.own_write(stored, len(answers), first_sent_ms):
                return calls.recovered(stored)
            raise

    def get_user(
        self, user_id: str, *, include_embedding: bool = False, timeout: Optional[float] = None
    ) -> UserInfo:
        """What the server knows of a seen or onboarded user (NOT_FOUND if neither)."""
        return self._send(calls.get_user(user_id, include_embedding), timeout)

    def delete_user(self, user_id: str, *, timeout: Optional[float] = None) -> None:
        """Deletes an onboarded user for good. A retry after a lost reply that finds the
        user gone counts as done."""
        try:
            self._send(calls.delete_user(user_id), timeout)
        except CoplError as e:
            if not (e.after_lost_reply and e.code == grpc.StatusCode.NOT_FOUND):
                raise

    def suggest_survey(
        self,
        max_pairs: int = 8,
        *,
        answers_so_far: Sequence[Answer] = (),
        declined: Sequence[Tuple[Union[str, Tuple[str, str]], Union[str, Tuple[str, str]]]] = (),
        seed: int = 0,
        timeout: Optional[float] = None,
    ) -> List[SurveyPair]:
        """The catalogue pairs to ask a new user next, most informative first (pass the
        answers so far for an adaptive survey, pairs shown and skipped as ``declined``)."""
        return self._send(calls.suggest_survey(max_pairs, answers_so_far, declined, seed), timeout)

    def info(self, *, timeout: Optional[float] = None) -> pb.InfoResponse:
        """The server's model, checkpoint and effective limits (the raw message)."""
        return self._send(calls.info(), timeout)
