"""What the sync and the asyncio clients share: the result types, how each call's
request is built and its reply read, the channel's target, credentials and options, and
the retry rules. Each RPC is one ``Call`` (method name, request, reader); the clients
only send them (``client.CoplClient``: blocking; ``aio.AsyncCoplClient``: ``grpc.aio``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import grpc

from .v1 import reward_pb2 as pb

#: Codes worth another try: the server (or its user store) is not ready, or the queue
#: is full. Anything else (bad input, unknown user) fails at once.
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)


class CoplError(Exception):
    """A call the server refused: ``code`` (a ``grpc.StatusCode``) and its message,
    which names the field at fault."""

    def __init__(self, code: grpc.StatusCode, message: str, *, after_lost_reply: bool = False):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        #: An earlier attempt of this call ended UNAVAILABLE: the server may have done it.
        self.after_lost_reply = after_lost_reply


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
    """An item a per-item ``score_batch`` (or a stream) did not score (the others were):
    its status code and why, naming the field (``items[3].response: blank …``)."""

    code: grpc.StatusCode
    message: str

    @staticmethod
    def _of(error: pb.ItemError) -> "ItemError":
        return ItemError(_CODES.get(error.code, grpc.StatusCode.UNKNOWN), error.message)


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
    #: True when the reply was lost (UNAVAILABLE) and a retry found this call's own
    #: write stored (``GetUser``): the figures of the adaptation are then unknown (0).
    recovered: bool = False


@dataclass(frozen=True)
class UserInfo:
    """What the server knows of a user (``GetUser``)."""

    user_id: str
    #: ``SEEN`` or ``ONBOARDED``.
    origin: str
    created_unix_ms: int
    answers: int
    personalised: bool
    #: ``(projection, expert, weight)`` in every adapted projection.
    routing: List[Tuple[str, int, float]]
    #: The gates' input; empty unless asked for.
    embedding: List[float]
    #: Onboarded for another checkpoint and re-adapted by this server from the answers
    #: the record keeps.
    readapted: bool = False
    #: Of those answers, the ones naming a response this checkpoint lacks.
    answers_outside_catalogue: int = 0

    @staticmethod
    def _of(u: pb.UserInfo) -> "UserInfo":
        return UserInfo(
            user_id=u.user_id,
            origin=pb.UserOrigin.Name(u.origin).removeprefix("USER_ORIGIN_"),
            created_unix_ms=u.created_unix_ms,
            answers=u.answers,
            personalised=u.personalised,
            routing=[(r.projection, r.expert, r.weight) for r in u.routing],
            embedding=list(u.embedding),
            readapted=u.readapted,
            answers_outside_catalogue=u.answers_outside_catalogue,
        )


@dataclass(frozen=True)
class SurveyPair:
    """A pair to ask a new user: which of ``a`` and ``b`` (``(id, text)``) answers
    ``prompt`` better? Most informative first."""

    prompt: str
    a: Tuple[str, str]
    b: Tuple[str, str]
    informativeness: float


#: A survey answer: ``(chosen, rejected)`` catalogue response ids, or
#: ``((prompt, chosen_text), (prompt, rejected_text))`` texts.
Answer = Tuple[Union[str, Tuple[str, str]], Union[str, Tuple[str, str]]]
#: A (user_id, prompt, response) item to score.
Item = Tuple[str, str, str]


def _ref(r: Union[str, Tuple[str, str]]) -> pb.ResponseRef:
    if isinstance(r, str):
        return pb.ResponseRef(id=r)
    prompt, response = r
    return pb.ResponseRef(text=pb.ResponseText(prompt=prompt, response=response))


def _answers(answers: Sequence[Answer]) -> List[pb.SurveyAnswer]:
    return [pb.SurveyAnswer(chosen=_ref(c), rejected=_ref(r)) for c, r in answers]


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
        raise ValueError(f"unknown_user={value!r}: use None, 'error' or 'population'") from None


@dataclass
class Call:
    """One unary RPC: the stub's method name, the request, how to read the reply. Every
    call is retried on ``RETRYABLE`` codes; the two that are not idempotent say what a
    retry's answer means when an earlier attempt may have landed (``CoplError.
    after_lost_reply``): OnboardUser's ALREADY_EXISTS (``own_write``) and DeleteUser's
    NOT_FOUND (done)."""

    method: str
    request: Any
    read: Callable[[Any], Any]


def score(user_id, prompt, response, truncate, unknown_user) -> Call:
    return Call(
        "Score",
        pb.ScoreRequest(
            user_id=user_id,
            prompt=prompt,
            response=response,
            truncate=truncate,
            unknown_user=_unknown_user(unknown_user),
        ),
        lambda r: Score._of(r.result),
    )


def score_batch(part: Sequence[Item], truncate, per_item_errors, unknown_user) -> Call:
    def read(reply) -> List[Union[Score, ItemError]]:
        if per_item_errors:
            return [
                Score._of(o.result) if o.WhichOneof("outcome") == "result" else ItemError._of(o.error)
                for o in reply.outcomes
            ]
        return [Score._of(r) for r in reply.results]

    return Call(
        "ScoreBatch",
        pb.ScoreBatchRequest(
            items=[pb.ScoreItem(user_id=u, prompt=p, response=r) for u, p, r in part],
            truncate=truncate,
            per_item_errors=per_item_errors,
            unknown_user=_unknown_user(unknown_user),
        ),
        read,
    )


def compare(user_id, prompt, response_a, response_b, truncate, unknown_user) -> Call:
    return Call(
        "CompareResponses",
        pb.CompareRequest(
            user_id=user_id,
            prompt=prompt,
            response_a=response_a,
            response_b=response_b,
            truncate=truncate,
            unknown_user=_unknown_user(unknown_user),
        ),
        lambda r: Comparison(r.probability_a_preferred, Score._of(r.a), Score._of(r.b)),
    )


def onboard(user_id, answers: Sequence[Answer], replace, hops, temperature) -> Call:
    options = pb.OnboardOptions()
    if hops is not None:
        options.hops = hops
    if temperature is not None:
        options.temperature = temperature

    def read(reply) -> Onboarded:
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

    return Call(
        "OnboardUser",
        pb.OnboardUserRequest(
            user_id=user_id, answers=_answers(answers), options=options, replace=replace
        ),
        read,
    )


def own_write(user: UserInfo, answers_sent: int, first_sent_ms: int) -> bool:
    """Whether the stored ``user`` is an OnboardUser this client sent (its reply lost):
    onboarded with as many answers, created between the first attempt and now (a minute
    of clock skew allowed either way). A concurrent create of the same id with as many
    answers in that window cannot be told apart; anything else is someone else's."""
    now = int(time.time() * 1000)
    return (
        user.origin == "ONBOARDED"
        and user.answers == answers_sent
        and first_sent_ms - 60_000 <= user.created_unix_ms <= now + 60_000
    )


def recovered(user: UserInfo) -> Onboarded:
    return Onboarded(
        user_id=user.user_id,
        personalised=user.personalised,
        confidence=0.0,
        fallback="NONE" if user.personalised else "POPULATION",
        neighbours_used=0,
        answers_used=0,
        recovered=True,
    )


def get_user(user_id, include_embedding) -> Call:
    return Call(
        "GetUser",
        pb.GetUserRequest(user_id=user_id, include_embedding=include_embedding),
        lambda r: UserInfo._of(r.user),
    )


def delete_user(user_id) -> Call:
    return Call("DeleteUser", pb.DeleteUserRequest(user_id=user_id), lambda r: None)


def suggest_survey(max_pairs, answers_so_far, declined, seed) -> Call:
    def read(reply) -> List[SurveyPair]:
        return [
            SurveyPair(
                prompt=p.prompt,
                a=(p.a.id, p.a.response),
                b=(p.b.id, p.b.response),
                informativeness=p.informativeness,
            )
            for p in reply.pairs
        ]

    return Call(
        "SuggestSurvey",
        pb.SuggestSurveyRequest(
            max_pairs=max_pairs,
            answers_so_far=_answers(answers_so_far),
            seed=seed,
            declined=[pb.DeclinedPair(a=_ref(a), b=_ref(b)) for a, b in declined],
        ),
        read,
    )


def info() -> Call:
    return Call("Info", pb.InfoRequest(), lambda r: r)


def stream_request(request_id: int, item: Item, truncate, unknown_user) -> pb.ScoreStreamRequest:
    u, p, r = item
    return pb.ScoreStreamRequest(
        request_id=request_id,
        item=pb.ScoreItem(user_id=u, prompt=p, response=r),
        truncate=truncate,
        unknown_user=_unknown_user(unknown_user),
    )


def stream_result(reply: pb.ScoreStreamResponse) -> Union[Score, ItemError]:
    if reply.WhichOneof("outcome") == "result":
        return Score._of(reply.result)
    return ItemError._of(reply.error)


def backoff(attempt: int, base: float, draw: float) -> float:
    """Seconds before retry ``attempt`` (0-based): exponential from ``base``, jittered by
    ``draw`` in [0, 1)."""
    return base * (2**attempt) * (0.5 + draw)


@dataclass
class Channel:
    """How to reach the server: the gRPC target, credentials (None: plaintext) and
    channel options."""

    target: str
    credentials: Optional[grpc.ChannelCredentials]
    options: List[Tuple[str, Any]]


def channel(
    target: str,
    *,
    max_message_bytes: int,
    root_certificates: Optional[bytes],
    certificate_chain: Optional[bytes],
    private_key: Optional[bytes],
    load_balancing: str,
) -> Channel:
    """``target`` as ``host:port``, ``http://host:port`` (plaintext), ``https://host:port``
    (TLS: the system's roots unless ``root_certificates``), or any gRPC target
    (``dns:///name:port``, ``ipv4:a:p,b:p``). ``certificate_chain`` + ``private_key`` (PEM)
    present a client certificate (mutual TLS). ``load_balancing="round_robin"`` (the
    default) spreads calls over every address the name resolves to — behind a
    Kubernetes headless Service, every pod — where gRPC's default would keep all calls
    on the first; bare ``host:port`` targets are resolved by DNS for it."""
    tls = root_certificates is not None or certificate_chain is not None
    if target.startswith("https://"):
        target, tls = target[len("https://") :], True
    elif target.startswith("http://"):
        target = target[len("http://") :]
    if (certificate_chain is None) != (private_key is None):
        raise ValueError("certificate_chain and private_key: give both (mutual TLS) or neither")
    if load_balancing not in ("round_robin", "pick_first"):
        raise ValueError(f"load_balancing={load_balancing!r}: use 'round_robin' or 'pick_first'")
    if "://" not in target and not target.startswith(("ipv4:", "ipv6:", "unix:")):
        target = "dns:///" + target
    options: List[Tuple[str, Any]] = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.service_config", json.dumps({"loadBalancingConfig": [{load_balancing: {}}]})),
    ]
    if target.startswith(("ipv4:", "ipv6:")) and "," in target:
        # gRPC would send the whole list as the HTTP/2 :authority, which servers refuse
        # (RST_STREAM, PROTOCOL_ERROR): the first address stands for them all.
        first = target.split(":", 1)[1].split(",")[0]
        options.append(("grpc.default_authority", first))
    credentials = (
        grpc.ssl_channel_credentials(
            root_certificates=root_certificates,
            private_key=private_key,
            certificate_chain=certificate_chain,
        )
        if tls
        else None
    )
    return Channel(target, credentials, options)
