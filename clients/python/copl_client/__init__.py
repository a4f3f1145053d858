"""Python client for CoPL-serve (gRPC ``copl.v1``).

``CoplClient`` (blocking) and ``AsyncCoplClient`` (asyncio, ``grpc.aio``) wrap the
generated stubs (``copl_client.v1``) with plain Python types, deadlines, retries that
never turn a landed write into an error, TLS and mutual TLS, and round-robin over every
address a name resolves to; ``reward_function`` / ``async_reward_function`` turn a
client into a reward function with the signature TRL's ``GRPOTrainer`` accepts.

    from copl_client import CoplClient, reward_function
    client = CoplClient("copl.example:50051")
    client.score("user-42", "How do I bake bread?", "Start with a poolish ...")
    trainer = GRPOTrainer(..., reward_funcs=[reward_function(client)])
"""

from .aio import AsyncCoplClient
from .calls import (
    Comparison,
    CoplError,
    ItemError,
    Onboarded,
    Score,
    SurveyPair,
    UserInfo,
)
from .client import CoplClient
from .trl import async_reward_function, reward_function

__all__ = [
    "AsyncCoplClient",
    "Comparison",
    "CoplClient",
    "CoplError",
    "ItemError",
    "Onboarded",
    "Score",
    "SurveyPair",
    "UserInfo",
    "async_reward_function",
    "reward_function",
]
