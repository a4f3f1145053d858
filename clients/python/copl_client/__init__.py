"""Python client for CoPL-serve (gRPC ``copl.v1``).

``CoplClient`` wraps the generated stubs (``copl_client.v1``) with plain Python types,
deadlines and retries; ``reward_function`` turns a client into a reward function with
the signature TRL's ``GRPOTrainer`` accepts.

    from copl_client import CoplClient, reward_function
    client = CoplClient("copl.example:50051")
    client.score("user-42", "How do I bake bread?", "Start with a poolish ...")
    trainer = GRPOTrainer(..., reward_funcs=[reward_function(client)])
"""

from .client import (
    Comparison,
    CoplClient,
    CoplError,
    ItemError,
    Onboarded,
    Score,
)
from .trl import reward_function

__all__ = [
    "Comparison",
    "CoplClient",
    "CoplError",
    "ItemError",
    "Onboarded",
    "Score",
    "reward_function",
]
