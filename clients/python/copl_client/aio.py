"""The asyncio client: ``AsyncCoplClient``, ``CoplClient``'s methods as coroutines over
``grpc.aio`` (what an async TRL reward function or an async backend awaits). Requests
and replies are built and read in ``calls``, as for the blocking client."""

from __future__ import annotations

import asyncio
import random
import time
from typing import AsyncIterator, Iterable, List, Optional, Sequence, Tuple, Union

import grpc
import grpc.aio

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


class AsyncCoplClient:
    """As ``CoplClient`` (same arguments and rules), every call a coroutine; use it
    inside a running event loop (``async with AsyncCoplClient(...) as c``)."""

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.1,
        api_key: Optional[str] = None,
        channel: Optional[grpc.aio.Channel] = None,
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
                grpc.aio.secure_channel(c.target, c.credentials, options=c.options)
                if c.credentials
                else grpc.aio.insecure_channel(c.target, options=c.options)
            )
        self._channel = channel
        self._stub = pb_grpc.RewardServiceStub(self._channel)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()

    async def close(self) -> None:
        if self._own_channel:
            await self._channel.close()

    async def __aenter__(self) -> "AsyncCoplClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def _send(self, call: calls.Call, timeout: Optional[float] = None):
        method = getattr(self._stub, call.method)
        attempt, lost = 0, False
        while True:
            try:
                reply = await method(
                    call.request,
                    timeout=self.timeout if timeout is None else timeout,
                    metadata=self._metadata,
                )
                return call.read(reply)
            except grpc.aio.AioRpcError as e:
                code = e.code()
                if code in RETRYABLE and attempt < self.retries:
                    lost = lost or code == grpc.StatusCode.UNAVAILABLE
                    await asyncio.sleep(calls.backoff(attempt, self.backoff, random.random()))
                    attempt += 1
                    continue
                raise CoplError(code, e.details() or "", after_lost_reply=lost) from None

    async def score(
        self,
        user_id: str,
        prompt: str,
        response: str,
        *,
        truncate: bool = True,
        unknown_user: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Score:
        """As ``CoplClient.score``."""
        return await self._send(
            calls.score(user_id, prompt, response, truncate, unknown_user), timeout
        )

    async def score_batch(
        self,
        items: Iterable[Item],
        *,
        truncate: bool = True,
        chunk: int = 256,
        per_item_errors: bool = False,
        unknown_user: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> List[Union[Score, ItemError]]:
        """As ``CoplClient.score_batch``; the chunks are sent concurrently."""
        items = list(items)
        parts = [items[s : s + chunk] for s in range(0, len(items), max(1, chunk))]
        replies = await asyncio.gather(
            *(
                self._send(calls.score_batch(p, truncate, per_item_errors, unknown_user), timeout)
                for p in parts
            )
        )
        return [s for part in replies for s in part]

    async def score_stream(
        self,
        items: Iterable[Item],
        *,
        truncate: bool = True,
        unknown_user: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> AsyncIterator[Union[Score, ItemError]]:
        """As ``CoplClient.score_stream``, an async iterator."""
        requests = (
            calls.stream_request(i, item, truncate, unknown_user) for i, item in enumerate(items)
        )
        replies = self._stub.ScoreStream(requests, timeout=timeout, metadata=self._metadata)
        try:
            async for reply in replies:
                yield calls.stream_result(reply)
        except grpc.aio.AioRpcError as e:
            raise CoplError(e.code(), e.details() or "") from None

    async def compare(
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
        """As ``CoplClient.compare``."""
        call = calls.compare(user_id, prompt, response_a, response_b, truncate, unknown_user)
        return await self._send(call, timeout)

    async def onboard(
        self,
        user_id: str,
        answers: Sequence[Answer],
        *,
        replace: bool = False,
        hops: Optional[int] = None,
        temperature: Optional[float] = None,
        timeout: Optional[float] = None,
    ) -> Onboarded:
        """As ``CoplClient.onboard`` (a lost reply's own write is ``recovered``)."""
        first_sent_ms = int(time.time() * 1000)
        try:
            return await self._send(
                calls.onboard(user_id, answers, replace, hops, temperature), timeout
            )
        except CoplError as e:
            if not (e.after_lost_reply and e.code == grpc.StatusCode.ALREADY_EXISTS):
                raise
            stored = await self.get_user(user_id, timeout=timeout)
            if calls.own_write(stored, len(answers), first_sent_ms):
                return calls.recovered(stored)
            raise

    async def get_user(
        self, user_id: str, *, include_embedding: bool = False, timeout: Optional[float] = None
    ) -> UserInfo:
        """As ``CoplClient.get_user``."""
        return await self._send(calls.get_user(user_id, include_embedding), timeout)

    async def delete_user(self, user_id: str, *, timeout: Optional[float] = None) -> None:
        """As ``CoplClient.delete_user``."""
        try:
            await self._send(calls.delete_user(user_id), timeout)
        except CoplError as e:
            if not (e.after_lost_reply and e.code == grpc.StatusCode.NOT_FOUND):
                raise

    async def suggest_survey(
        self,
        max_pairs: int = 8,
        *,
        answers_so_far: Sequence[Answer] = (),
        declined: Sequence[Tuple[Union[str, Tuple[str, str]], Union[str, Tuple[str, str]]]] = (),
        seed: int = 0,
        timeout: Optional[float] = None,
    ) -> List[SurveyPair]:
        """As ``CoplClient.suggest_survey``."""
        return await self._send(
            calls.suggest_survey(max_pairs, answers_so_far, declined, seed), timeout
        )

    async def info(self, *, timeout: Optional[float] = None) -> pb.InfoResponse:
        """As ``CoplClient.info``."""
        return await self._send(calls.info(), timeout)
