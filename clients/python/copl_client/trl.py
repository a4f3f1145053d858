"""A reward function for TRL's ``GRPOTrainer`` (``reward_funcs=[...]``).

TRL calls ``f(prompts, completions, **kwargs) -> list[float]`` with the batch's prompts
and completions (strings, or chat messages in the conversational format) and every
other dataset column as a keyword argument, one value per sample. The user each sample
is scored for comes from the column ``user_key`` (default ``user_id``); a sample
without one gets the population reward (empty user id).
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional

from .client import CoplClient


def _text(x: Any) -> str:
    """A string, or chat messages (``[{"role": ..., "content": ...}, ...]``) joined."""
    if isinstance(x, str):
        return x
    if isinstance(x, dict):
        return str(x.get("content", ""))
    if isinstance(x, (list, tuple)):
        return "\n".join(_text(m) for m in x)
    return str(x)


def reward_function(
    client: CoplClient,
    *,
    user_key: str = "user_id",
    default_user: str = "",
    truncate: bool = True,
) -> Callable[..., List[Optional[float]]]:
    """A GRPOTrainer reward function scoring each completion for its sample's user."""

    def copl_reward(prompts, completions, **kwargs) -> List[Optional[float]]:
        users = kwargs.get(user_key)
        if users is None or isinstance(users, str):
            users = [users or default_user] * len(completions)
        items = [
            (u or default_user, _text(p), _text(c))
            for u, p, c in zip(users, prompts, completions)
        ]
        return [s.reward for s in client.score_batch(items, truncate=truncate)]

    copl_reward.__name__ = "copl_reward"
    return copl_reward
