"""A small typed wrapper over the ``copl.v1.RewardService`` stubs."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import grpc

from .v1 import reward_pb2 as pb
from .v1 import reward_pb2_grpc as pb_grpc

#: Codes worth another try: the server (or its user store) is not ready, or the queue
#: is full. Anything else (bad input, unknown user) fails at once.
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)


class CoplError(Exception):
    """A call the server refused: ``code`` (a ``grpc.StatusCode``) and its message,
    which names the field at fault."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Score:
    """One scored response."""

    reward: float
    #: False when the population reward was served (empty or population-fallback user).
    personalised: bool
    input_tokens: int
    truncated: bool
    #: True when the user id was unknown and ``unknown_user="population"`` stood in.
    user_unknown: bool = False

    @staticmethod
    def _of(result: pb.ScoreResult) -> "Score":
        return Score(
            reward=result.reward,
            personalised=result.personalised,
            input_tokens=result.input_tokens,
            truncated=result.truncated,
            user_unknown=result.user_unknown,
        )


#: ``grpc.StatusCode`` by its number (``ItemError.code`` on the wire).
_CODES = {c.value[0]: c for c in grpc.StatusCode}


@dataclass(frozen=True)
class ItemError:
    """An item a per-item ``score_batch`` did not score (the others were): its status
    code and why, naming the field (``items[3].response: blank …``)."""

    code: grpc.StatusCode
    message: str

    @staticmethod
    def _of(error: pb.ItemError) -> "ItemError":
        return ItemError(_CODES.get(error.code, grpc.StatusCode.UNKNOWN), error.message)


#: ``unknown_user`` values: what the server does with a user id it does not know.
#: ``None`` leaves it to the server's ``scoring.unknown_user`` setting (default error).
UNKNOWN_USER = {
    None: pb.UNKNOWN_USER_UNSPECIFIED,
    "error": pb.UNKNOWN_USER_ERROR,
    "population": pb.UNKNOWN_USER_POPULATION,
}


def _unknown_user(value: Optional[str]) -> int:
    try:
        return UNKNOWN_USER[value]
    except KeyError:
        raise ValueError(
            f"unknown_user={value!r}: use None, 'error' or 'population'"
        ) from None


@dataclass(frozen=True)
class Comparison:
    """Two responses to one prompt, scored in one batch."""

    probability_a_preferred: float
    a: Score
    b: Score


@dataclass(frozen=True)
class Onboarded:
    """What onboarding made of a new user's answers."""

    user_id: str
    personalised: bool
    confidence: float
    #: ``NONE``, ``WIDENED_HOPS``, ``SIGNED_NEIGHBOURS`` or ``POPULATION``.
    fallback: str
    neighbours_used: int
    answers_used: int


#: A survey answer: ``(chosen, rejected)`` catalogue response ids, or
#: ``((prompt, chosen_text), (prompt, rejected_text))`` texts.
Answer = Tuple[Union[str, Tuple[str, str]], Union[str, Tuple[str, str]]]


def _ref(r: Union[str, Tuple[str, str]]) -> pb.ResponseRef:
    if isinstance(r, str):
        return pb.ResponseRef(id=r)
    prompt, response = r
    return pb.ResponseRef(text=pb.ResponseText(prompt=prompt, response=response))


class CoplClient:
    """A connection to one CoPL-serve server (or a load balancer in front of several).

    ``timeout`` is each attempt's deadline in seconds; a call that answers UNAVAILABLE
    or RESOURCE_EXHAUSTED is tried up to ``retries`` more times with jittered
    exponential back-off from ``backoff`` seconds. ``api_key``, when given, is sent as
    ``authorization: Bearer``; ``root_certificates`` (PEM bytes of the CA) connects
    with TLS (docs/security.md).
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
    ):
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        self._own_channel = channel is None
        if channel is None and root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            channel = grpc.secure_channel(target, credentials, options=options)
        self._channel = channel or grpc.insecure_channel(target, options=options)
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

    def _call(self, method, request, timeout: Optional[float] = None):
        attempt = 0
        while True:
            try:
                return method(
                    request,
                    timeout=self.timeout if timeout is None else timeout,
                    metadata=self._metadata,
                )
            except grpc.RpcError as e:
                code = e.code()
                if code in RETRYABLE and attempt < self.retries:
                    delay = self.backoff * (2**attempt)
                    time.sleep(delay * (0.5 + random.random()))
                    attempt += 1
                    continue
                raise CoplError(code, e.details() or "") from None

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
        reply = self._call(
            self._stub.Score,
            pb.ScoreRequest(
                user_id=user_id,
                prompt=prompt,
                response=response,
                truncate=truncate,
                unknown_user=_unknown_user(unknown_user),
            ),
            timeout,
        )
        return Score._of(reply.result)

    def score_batch(
        self,
        items: Iterable[Tuple[str, str, str]],
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
            reply = self._call(
                self._stub.ScoreBatch,
                pb.ScoreBatchRequest(
                    items=[pb.ScoreItem(user_id=u, prompt=p, response=r) for u, p, r in part],
                    truncate=truncate,
                    per_item_errors=per_item_errors,
                    unknown_user=_unknown_user(unknown_user),
                ),
                timeout,
            )
            if per_item_errors:
                scores.extend(
                    Score._of(o.result) if o.WhichOneof("outcome") == "result"
                    else ItemError._of(o.error)
                    for o in reply.outcomes
                )
            else:
                scores.extend(Score._of(r) for r in reply.results)
        return scores

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
        reply = self._call(
            self._stub.CompareResponses,
            pb.CompareRequest(
                user_id=user_id,
                prompt=prompt,
                response_a=response_a,
                response_b=response_b,
                truncate=truncate,
                unknown_user=_unknown_user(unknown_user),
            ),
            timeout,
        )
        return Comparison(reply.probability_a_preferred, Score._of(reply.a), Score._of(reply.b))

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
        """Onboards a new user from pairwise answers (no optimisation: paper eq. 11)."""
        options = pb.OnboardOptions()
        if hops is not None:
            options.hops = hops
        if temperature is not None:
            options.temperature = temperature
        reply = self._call(
            self._stub.OnboardUser,
            pb.OnboardUserRequest(
                user_id=user_id,
                answers=[pb.SurveyAnswer(chosen=_ref(c), rejected=_ref(r)) for c, r in answers],
                options=options,
                replace=replace,
            ),
            timeout,
        )
        return Onboarded(
            user_id=reply.user.user_id,
            personalised=reply.user.personalised,
            confidence=reply.confidence,
            fallback=pb.AdaptationFallback.Name(reply.fallback).removeprefix(
                "ADAPTATION_FALLBACK_"
            ),
            neighbours_used=reply.neighbours_used,
            answers_used=reply.answers.used,
        )

    def delete_user(self, user_id: str, *, timeout: Optional[float] = None) -> None:
        """Deletes an onboarded user for good."""
        self._call(self._stub.DeleteUser, pb.DeleteUserRequest(user_id=user_id), timeout)

    def info(self, *, timeout: Optional[float] = None) -> pb.InfoResponse:
        """The server's model, checkpoint and effective limits (the raw message)."""
        return self._call(self._stub.Info, pb.InfoRequest(), timeout)
