from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UnknownUser(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UNKNOWN_USER_UNSPECIFIED: _ClassVar[UnknownUser]
    UNKNOWN_USER_ERROR: _ClassVar[UnknownUser]
    UNKNOWN_USER_POPULATION: _ClassVar[UnknownUser]

class AdaptationFallback(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ADAPTATION_FALLBACK_NONE: _ClassVar[AdaptationFallback]
    ADAPTATION_FALLBACK_WIDENED_HOPS: _ClassVar[AdaptationFallback]
    ADAPTATION_FALLBACK_POPULATION: _ClassVar[AdaptationFallback]
    ADAPTATION_FALLBACK_SIGNED_NEIGHBOURS: _ClassVar[AdaptationFallback]

class UserOrigin(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    USER_ORIGIN_UNSPECIFIED: _ClassVar[UserOrigin]
    USER_ORIGIN_SEEN: _ClassVar[UserOrigin]
    USER_ORIGIN_ONBOARDED: _ClassVar[UserOrigin]
UNKNOWN_USER_UNSPECIFIED: UnknownUser
UNKNOWN_USER_ERROR: UnknownUser
UNKNOWN_USER_POPULATION: UnknownUser
ADAPTATION_FALLBACK_NONE: AdaptationFallback
ADAPTATION_FALLBACK_WIDENED_HOPS: AdaptationFallback
ADAPTATION_FALLBACK_POPULATION: AdaptationFallback
ADAPTATION_FALLBACK_SIGNED_NEIGHBOURS: AdaptationFallback
USER_ORIGIN_UNSPECIFIED: UserOrigin
USER_ORIGIN_SEEN: UserOrigin
USER_ORIGIN_ONBOARDED: UserOrigin

class Metadata(_message.Message):
    __slots__ = ("compute_chars", "compute_tokens", "total_time_ns", "tokenization_time_ns", "queue_time_ns", "inference_time_ns")
    COMPUTE_CHARS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    TOKENIZATION_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    compute_chars: int
    compute_tokens: int
    total_time_ns: int
    tokenization_time_ns: int
    queue_time_ns: int
    inference_time_ns: int
    def __init__(self, compute_chars: _Optional[int] = ..., compute_tokens: _Optional[int] = ..., total_time_ns: _Optional[int] = ..., tokenization_time_ns: _Optional[int] = ..., queue_time_ns: _Optional[int] = ..., inference_time_ns: _Optional[int] = ...) -> None: ...

class ScoreItem(_message.Message):
    __slots__ = ("user_id", "prompt", "response")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    prompt: str
    response: str
    def __init__(self, user_id: _Optional[str] = ..., prompt: _Optional[str] = ..., response: _Optional[str] = ...) -> None: ...

class ScoreResult(_message.Message):
    __slots__ = ("reward", "personalised", "input_tokens", "truncated", "user_unknown")
    REWARD_FIELD_NUMBER: _ClassVar[int]
    PERSONALISED_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    USER_UNKNOWN_FIELD_NUMBER: _ClassVar[int]
    reward: float
    personalised: bool
    input_tokens: int
    truncated: bool
    user_unknown: bool
    def __init__(self, reward: _Optional[float] = ..., personalised: _Optional[bool] = ..., input_tokens: _Optional[int] = ..., truncated: _Optional[bool] = ..., user_unknown: _Optional[bool] = ...) -> None: ...

class ScoreOutcome(_message.Message):
    __slots__ = ("result", "error")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    result: ScoreResult
    error: ItemError
    def __init__(self, result: _Optional[_Union[ScoreResult, _Mapping]] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ...) -> None: ...

class ItemError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class ScoreRequest(_message.Message):
    __slots__ = ("user_id", "prompt", "response", "truncate", "unknown_user")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    TRUNCATE_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_USER_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    prompt: str
    response: str
    truncate: bool
    unknown_user: UnknownUser
    def __init__(self, user_id: _Optional[str] = ..., prompt: _Optional[str] = ..., response: _Optional[str] = ..., truncate: _Optional[bool] = ..., unknown_user: _Optional[_Union[UnknownUser, str]] = ...) -> None: ...

class ScoreResponse(_message.Message):
    __slots__ = ("result", "metadata")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    result: ScoreResult
    metadata: Metadata
    def __init__(self, result: _Optional[_Union[ScoreResult, _Mapping]] = ..., metadata: _Optional[_Union[Metadata, _Mapping]] = ...) -> None: ...

class ScoreBatchRequest(_message.Message):
    __slots__ = ("items", "truncate", "per_item_errors", "unknown_user")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATE_FIELD_NUMBER: _ClassVar[int]
    PER_ITEM_ERRORS_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_USER_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ScoreItem]
    truncate: bool
    per_item_errors: bool
    unknown_user: UnknownUser
    def __init__(self, items: _Optional[_Iterable[_Union[ScoreItem, _Mapping]]] = ..., truncate: _Optional[bool] = ..., per_item_errors: _Optional[bool] = ..., unknown_user: _Optional[_Union[UnknownUser, str]] = ...) -> None: ...

class ScoreBatchResponse(_message.Message):
    __slots__ = ("results", "metadata", "outcomes")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ScoreResult]
    metadata: Metadata
    outcomes: _containers.RepeatedCompositeFieldContainer[ScoreOutcome]
    def __init__(self, results: _Optional[_Iterable[_Union[ScoreResult, _Mapping]]] = ..., metadata: _Optional[_Union[Metadata, _Mapping]] = ..., outcomes: _Optional[_Iterable[_Union[ScoreOutcome, _Mapping]]] = ...) -> None: ...

class ScoreStreamRequest(_message.Message):
    __slots__ = ("request_id", "item", "truncate", "unknown_user")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_FIELD_NUMBER: _ClassVar[int]
    TRUNCATE_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_USER_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    item: ScoreItem
    truncate: bool
    unknown_user: UnknownUser
    def __init__(self, request_id: _Optional[int] = ..., item: _Optional[_Union[ScoreItem, _Mapping]] = ..., truncate: _Optional[bool] = ..., unknown_user: _Optional[_Union[UnknownUser, str]] = ...) -> None: ...

class ScoreStreamResponse(_message.Message):
    __slots__ = ("request_id", "result", "error", "metadata")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    result: ScoreResult
    error: ItemError
    metadata: Metadata
    def __init__(self, request_id: _Optional[int] = ..., result: _Optional[_Union[ScoreResult, _Mapping]] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ..., metadata: _Optional[_Union[Metadata, _Mapping]] = ...) -> None: ...

class CompareRequest(_message.Message):
    __slots__ = ("user_id", "prompt", "response_a", "response_b", "truncate", "unknown_user")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_A_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_B_FIELD_NUMBER: _ClassVar[int]
    TRUNCATE_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_USER_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    prompt: str
    response_a: str
    response_b: str
    truncate: bool
    unknown_user: UnknownUser
    def __init__(self, user_id: _Optional[str] = ..., prompt: _Optional[str] = ..., response_a: _Optional[str] = ..., response_b: _Optional[str] = ..., truncate: _Optional[bool] = ..., unknown_user: _Optional[_Union[UnknownUser, str]] = ...) -> None: ...

class CompareResponse(_message.Message):
    __slots__ = ("probability_a_preferred", "a", "b", "metadata")
    PROBABILITY_A_PREFERRED_FIELD_NUMBER: _ClassVar[int]
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    probability_a_preferred: float
    a: ScoreResult
    b: ScoreResult
    metadata: Metadata
    def __init__(self, probability_a_preferred: _Optional[float] = ..., a: _Optional[_Union[ScoreResult, _Mapping]] = ..., b: _Optional[_Union[ScoreResult, _Mapping]] = ..., metadata: _Optional[_Union[Metadata, _Mapping]] = ...) -> None: ...

class ResponseRef(_message.Message):
    __slots__ = ("id", "text")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: ResponseText
    def __init__(self, id: _Optional[str] = ..., text: _Optional[_Union[ResponseText, _Mapping]] = ...) -> None: ...

class ResponseText(_message.Message):
    __slots__ = ("response", "prompt")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    response: str
    prompt: str
    def __init__(self, response: _Optional[str] = ..., prompt: _Optional[str] = ...) -> None: ...

class SurveyAnswer(_message.Message):
    __slots__ = ("chosen", "rejected")
    CHOSEN_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    chosen: ResponseRef
    rejected: ResponseRef
    def __init__(self, chosen: _Optional[_Union[ResponseRef, _Mapping]] = ..., rejected: _Optional[_Union[ResponseRef, _Mapping]] = ...) -> None: ...

class OnboardOptions(_message.Message):
    __slots__ = ("hops", "temperature")
    HOPS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    hops: int
    temperature: float
    def __init__(self, hops: _Optional[int] = ..., temperature: _Optional[float] = ...) -> None: ...

class OnboardUserRequest(_message.Message):
    __slots__ = ("user_id", "answers", "options", "replace")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    answers: _containers.RepeatedCompositeFieldContainer[SurveyAnswer]
    options: OnboardOptions
    replace: bool
    def __init__(self, user_id: _Optional[str] = ..., answers: _Optional[_Iterable[_Union[SurveyAnswer, _Mapping]]] = ..., options: _Optional[_Union[OnboardOptions, _Mapping]] = ..., replace: _Optional[bool] = ...) -> None: ...

class AnswerSummary(_message.Message):
    __slots__ = ("given", "used", "duplicates", "contradictory", "outside_graph")
    GIVEN_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    CONTRADICTORY_FIELD_NUMBER: _ClassVar[int]
    OUTSIDE_GRAPH_FIELD_NUMBER: _ClassVar[int]
    given: int
    used: int
    duplicates: int
    contradictory: int
    outside_graph: int
    def __init__(self, given: _Optional[int] = ..., used: _Optional[int] = ..., duplicates: _Optional[int] = ..., contradictory: _Optional[int] = ..., outside_graph: _Optional[int] = ...) -> None: ...

class OnboardUserResponse(_message.Message):
    __slots__ = ("user", "neighbourhood_size", "neighbours_used", "hops_used", "fallback", "confidence", "answer_agreement", "answers", "metadata")
    USER_FIELD_NUMBER: _ClassVar[int]
    NEIGHBOURHOOD_SIZE_FIELD_NUMBER: _ClassVar[int]
    NEIGHBOURS_USED_FIELD_NUMBER: _ClassVar[int]
    HOPS_USED_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    ANSWER_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    user: UserInfo
    neighbourhood_size: int
    neighbours_used: int
    hops_used: int
    fallback: AdaptationFallback
    confidence: float
    answer_agreement: float
    answers: AnswerSummary
    metadata: Metadata
    def __init__(self, user: _Optional[_Union[UserInfo, _Mapping]] = ..., neighbourhood_size: _Optional[int] = ..., neighbours_used: _Optional[int] = ..., hops_used: _Optional[int] = ..., fallback: _Optional[_Union[AdaptationFallback, str]] = ..., confidence: _Optional[float] = ..., answer_agreement: _Optional[float] = ..., answers: _Optional[_Union[AnswerSummary, _Mapping]] = ..., metadata: _Optional[_Union[Metadata, _Mapping]] = ...) -> None: ...

class ExpertRouting(_message.Message):
    __slots__ = ("projection", "expert", "weight")
    PROJECTION_FIELD_NUMBER: _ClassVar[int]
    EXPERT_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    projection: str
    expert: int
    weight: float
    def __init__(self, projection: _Optional[str] = ..., expert: _Optional[int] = ..., weight: _Optional[float] = ...) -> None: ...

class UserInfo(_message.Message):
    __slots__ = ("user_id", "origin", "created_unix_ms", "answers", "personalised", "routing", "embedding", "readapted", "answers_outside_catalogue")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    PERSONALISED_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    READAPTED_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_OUTSIDE_CATALOGUE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    origin: UserOrigin
    created_unix_ms: int
    answers: int
    personalised: bool
    routing: _containers.RepeatedCompositeFieldContainer[ExpertRouting]
    embedding: _containers.RepeatedScalarFieldContainer[float]
    readapted: bool
    answers_outside_catalogue: int
    def __init__(self, user_id: _Optional[str] = ..., origin: _Optional[_Union[UserOrigin, str]] = ..., created_unix_ms: _Optional[int] = ..., answers: _Optional[int] = ..., personalised: _Optional[bool] = ..., routing: _Optional[_Iterable[_Union[ExpertRouting, _Mapping]]] = ..., embedding: _Optional[_Iterable[float]] = ..., readapted: _Optional[bool] = ..., answers_outside_catalogue: _Optional[int] = ...) -> None: ...

class GetUserRequest(_message.Message):
    __slots__ = ("user_id", "include_embedding")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    include_embedding: bool
    def __init__(self, user_id: _Optional[str] = ..., include_embedding: _Optional[bool] = ...) -> None: ...

class GetUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: UserInfo
    def __init__(self, user: _Optional[_Union[UserInfo, _Mapping]] = ...) -> None: ...

class DeleteUserRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class DeleteUserResponse(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class SuggestSurveyRequest(_message.Message):
    __slots__ = ("max_pairs", "answers_so_far", "seed", "declined")
    MAX_PAIRS_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_SO_FAR_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    DECLINED_FIELD_NUMBER: _ClassVar[int]
    max_pairs: int
    answers_so_far: _containers.RepeatedCompositeFieldContainer[SurveyAnswer]
    seed: int
    declined: _containers.RepeatedCompositeFieldContainer[DeclinedPair]
    def __init__(self, max_pairs: _Optional[int] = ..., answers_so_far: _Optional[_Iterable[_Union[SurveyAnswer, _Mapping]]] = ..., seed: _Optional[int] = ..., declined: _Optional[_Iterable[_Union[DeclinedPair, _Mapping]]] = ...) -> None: ...

class DeclinedPair(_message.Message):
    __slots__ = ("a", "b")
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    a: ResponseRef
    b: ResponseRef
    def __init__(self, a: _Optional[_Union[ResponseRef, _Mapping]] = ..., b: _Optional[_Union[ResponseRef, _Mapping]] = ...) -> None: ...

class CatalogueResponse(_message.Message):
    __slots__ = ("id", "response")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    id: str
    response: str
    def __init__(self, id: _Optional[str] = ..., response: _Optional[str] = ...) -> None: ...

class SurveyPair(_message.Message):
    __slots__ = ("prompt", "a", "b", "informativeness")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    INFORMATIVENESS_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    a: CatalogueResponse
    b: CatalogueResponse
    informativeness: float
    def __init__(self, prompt: _Optional[str] = ..., a: _Optional[_Union[CatalogueResponse, _Mapping]] = ..., b: _Optional[_Union[CatalogueResponse, _Mapping]] = ..., informativeness: _Optional[float] = ...) -> None: ...

class SuggestSurveyResponse(_message.Message):
    __slots__ = ("pairs",)
    PAIRS_FIELD_NUMBER: _ClassVar[int]
    pairs: _containers.RepeatedCompositeFieldContainer[SurveyPair]
    def __init__(self, pairs: _Optional[_Iterable[_Union[SurveyPair, _Mapping]]] = ...) -> None: ...

class InfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_input_tokens", "max_batch_items", "max_batch_tokens", "max_queued_requests", "max_survey_answers", "max_hops", "max_message_bytes", "max_batch_rows", "batch_linger_micros", "max_concurrent_streams")
    MAX_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_ITEMS_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUED_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    MAX_SURVEY_ANSWERS_FIELD_NUMBER: _ClassVar[int]
    MAX_HOPS_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_ROWS_FIELD_NUMBER: _ClassVar[int]
    BATCH_LINGER_MICROS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_STREAMS_FIELD_NUMBER: _ClassVar[int]
    max_input_tokens: int
    max_batch_items: int
    max_batch_tokens: int
    max_queued_requests: int
    max_survey_answers: int
    max_hops: int
    max_message_bytes: int
    max_batch_rows: int
    batch_linger_micros: int
    max_concurrent_streams: int
    def __init__(self, max_input_tokens: _Optional[int] = ..., max_batch_items: _Optional[int] = ..., max_batch_tokens: _Optional[int] = ..., max_queued_requests: _Optional[int] = ..., max_survey_answers: _Optional[int] = ..., max_hops: _Optional[int] = ..., max_message_bytes: _Optional[int] = ..., max_batch_rows: _Optional[int] = ..., batch_linger_micros: _Optional[int] = ..., max_concurrent_streams: _Optional[int] = ...) -> None: ...

class InfoResponse(_message.Message):
    __slots__ = ("version", "backbone", "backbone_family", "backbone_sha256", "checkpoint", "checkpoint_format_version", "text_template", "embedding_dim", "num_experts", "adapted_projections", "seen_users", "onboarded_users", "catalogue_responses", "limits", "device", "population_reward", "checkpoint_id", "loaded_unix_ms", "parent_checkpoint_id", "dtype")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BACKBONE_FIELD_NUMBER: _ClassVar[int]
    BACKBONE_FAMILY_FIELD_NUMBER: _ClassVar[int]
    BACKBONE_SHA256_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    TEXT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_DIM_FIELD_NUMBER: _ClassVar[int]
    NUM_EXPERTS_FIELD_NUMBER: _ClassVar[int]
    ADAPTED_PROJECTIONS_FIELD_NUMBER: _ClassVar[int]
    SEEN_USERS_FIELD_NUMBER: _ClassVar[int]
    ONBOARDED_USERS_FIELD_NUMBER: _ClassVar[int]
    CATALOGUE_RESPONSES_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    POPULATION_REWARD_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    LOADED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    PARENT_CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    version: str
    backbone: str
    backbone_family: str
    backbone_sha256: str
    checkpoint: str
    checkpoint_format_version: int
    text_template: str
    embedding_dim: int
    num_experts: int
    adapted_projections: _containers.RepeatedScalarFieldContainer[str]
    seen_users: int
    onboarded_users: int
    catalogue_responses: int
    limits: Limits
    device: str
    population_reward: str
    checkpoint_id: str
    loaded_unix_ms: int
    parent_checkpoint_id: str
    dtype: str
    def __init__(self, version: _Optional[str] = ..., backbone: _Optional[str] = ..., backbone_family: _Optional[str] = ..., backbone_sha256: _Optional[str] = ..., checkpoint: _Optional[str] = ..., checkpoint_format_version: _Optional[int] = ..., text_template: _Optional[str] = ..., embedding_dim: _Optional[int] = ..., num_experts: _Optional[int] = ..., adapted_projections: _Optional[_Iterable[str]] = ..., seen_users: _Optional[int] = ..., onboarded_users: _Optional[int] = ..., catalogue_responses: _Optional[int] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., device: _Optional[str] = ..., population_reward: _Optional[str] = ..., checkpoint_id: _Optional[str] = ..., loaded_unix_ms: _Optional[int] = ..., parent_checkpoint_id: _Optional[str] = ..., dtype: _Optional[str] = ...) -> None: ...

class ReloadCheckpointRequest(_message.Message):
    __slots__ = ("checkpoint",)
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    checkpoint: str
    def __init__(self, checkpoint: _Optional[str] = ...) -> None: ...

class ReloadCheckpointResponse(_message.Message):
    __slots__ = ("checkpoint_id", "previous_checkpoint_id", "checkpoint", "load_ms")
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    LOAD_MS_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    previous_checkpoint_id: str
    checkpoint: str
    load_ms: int
    def __init__(self, checkpoint_id: _Optional[str] = ..., previous_checkpoint_id: _Optional[str] = ..., checkpoint: _Optional[str] = ..., load_ms: _Optional[int] = ...) -> None: ...
