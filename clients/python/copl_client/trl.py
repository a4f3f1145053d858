"""A reward function for TRL's ``GRPOTrainer`` (``reward_funcs=[...]``).

TRL calls ``f(prompts=..., completions=..., completion_ids=..., **columns)`` with the
batch's prompts and completions — strings (standard format) or chat messages
(conversational format: a prompt is a list of ``{"role", "content"}`` messages, a
completion a list holding the assistant's message) — and every other dataset column as
a keyword argument, one value per sample. It accepts ``None`` for a sample a reward
function cannot score.

What this function does with each sample, never silently:

- **The user** comes from the column ``user_key`` (default ``user_id``). A missing
  column raises ``KeyError`` naming the columns there are (a mistyped name must not turn
  every sample into the population). A sample whose id is ``None`` or ``""`` follows
  ``missing_user`` (``"population"``: the population reward; ``"none"``: ``None``);
  integer ids become their decimal string; any other type raises ``TypeError`` naming
  the sample. ``user_key=None`` scores every sample with the population reward.
- **Unknown users** (neither seen nor onboarded) follow ``unknown_user``: ``"none"``
  (default: ``None``) or ``"population"`` (the server's population reward, flagged).
- **Conversations** are rendered with the checkpoint's own text template (``Info``'s
  ``text_template``): with a chat format such as Gemma's, earlier turns become turns of
  that format, so the model reads the conversation as its template writes one; with
  BERT's sentence-pair template, the turns are labelled ``System:`` / ``User:`` /
  ``Assistant:`` in the prompt. The last user turn stays nearest the response (what
  truncation keeps). ``content`` may be a string, ``None`` (empty) or a list of parts;
  a part that is not text (an image) makes the sample unscorable: ``None``.
- **Unscorable samples** — blank completions, unknown users, over-long texts without
  ``truncate`` — are ``None`` for that sample only (the batch is sent with per-item
  outcomes); the others are scored. Counts are kept in ``fn.stats`` (a ``Counter``:
  ``scored``, ``population``, ``unknown_user_population`` and ``not_scored:<reason>``)
  and each batch with unscored samples logs one warning on the ``copl_client`` logger.
- A call that fails as a whole (the server unreachable after the client's retries)
  raises ``CoplError``: a training run must not go on without its reward.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Callable, List, Optional, Sequence, Tuple

from .calls import ItemError

log = logging.getLogger("copl_client")

#: Beginning-of-sequence markers a chat format opens with once, not at every turn.
_BOS = ("<bos>", "<s>", "<|begin_of_text|>")


class Unscorable(ValueError):
    """A sample this function cannot turn into text (``reason`` names why)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _content(content: Any) -> str:
    """A message's ``content``: a string, ``None`` or a list of parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and part.get("type", "text") == "text":
                texts.append(str(part.get("text", "")))
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise Unscorable(f"content part of type {kind!r} is not text")
        return "".join(texts)
    raise Unscorable(f"content of type {type(content).__name__}")


def _messages(x: Any) -> List[Tuple[str, str]]:
    """``(role, text)`` of a message list (or of one message)."""
    if isinstance(x, dict):
        x = [x]
    out = []
    for m in x:
        if not isinstance(m, dict):
            raise Unscorable(f"message of type {type(m).__name__}")
        out.append((str(m.get("role", "user")), _content(m.get("content"))))
    return out


class Template:
    """How the checkpoint turns ``(prompt, response)`` into text (``Info.text_template``):
    ``pair`` (BERT's sentence pair) or a format with ``{prompt}`` and ``{response}``."""

    def __init__(self, text_template: str):
        self.text = text_template
        self.turns: Optional[Tuple[str, str]] = None
        if "{prompt}" in text_template and "{response}" in text_template:
            head, rest = text_template.split("{prompt}", 1)
            between, tail = rest.split("{response}", 1)
            for bos in _BOS:
                if head.startswith(bos):
                    head = head[len(bos) :]
                    break
            # `between` closes the user's turn and opens the model's; a model turn ends
            # with `tail`, and the next user turn opens with `head` after the white space
            # the format puts between turns (what follows `tail` at the start of
            # `between`, as in Gemma's "<end_of_turn>\n<start_of_turn>model\n").
            rest = between[len(tail) :] if tail and between.startswith(tail) else ""
            sep = rest[: len(rest) - len(rest.lstrip())]
            self.turns = (between, tail + sep + head)

    def prompt(self, prompt: Any) -> str:
        """The prompt text the server's template completes with the response."""
        if isinstance(prompt, str):
            return prompt
        messages = _messages(prompt)
        if self.turns is None:
            if len(messages) == 1 and messages[0][0] == "user":
                return messages[0][1]
            return "\n\n".join(f"{role.capitalize()}: {text}" for role, text in messages)
        to_model, to_user = self.turns
        # System (and developer) text opens the first user turn, as chat formats without
        # a system role do (Gemma's own template); a tool's answer is the user side.
        system = [t for r, t in messages if r in ("system", "developer")]
        turns: List[List[str]] = []
        for role, t in messages:
            if role in ("system", "developer"):
                continue
            side = "assistant" if role in ("assistant", "model") else "user"
            if turns and turns[-1][0] == side:
                turns[-1][1] += "\n\n" + t
            else:
                turns.append([side, t])
        if not turns or turns[0][0] != "user":
            turns.insert(0, ["user", ""])
        if system:
            turns[0][1] = "\n\n".join(system + ([turns[0][1]] if turns[0][1] else []))
        if turns[-1][0] != "user":
            raise Unscorable("a conversation that does not end with a user turn")
        # The server writes head + prompt + between + response + tail: the earlier
        # turns go into the prompt as whole turns of the format.
        text = turns[0][1]
        for side, t in turns[1:]:
            text += (to_model if side == "assistant" else to_user) + t
        return text

    @staticmethod
    def completion(completion: Any) -> str:
        """A completion's text: a string, or the assistant's message(s)."""
        if isinstance(completion, str):
            return completion
        return "\n\n".join(t for _, t in _messages(completion))


def _user(value: Any, index: int, missing_user: str) -> Optional[str]:
    """The user id of sample ``index`` ("" = population; ``None`` = not scored)."""
    if value is None or value == "":
        return "" if missing_user == "population" else None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"sample {index}: user id {value!r} of type {type(value).__name__}")


def _users(kwargs: dict, n: int, user_key: Optional[str]) -> Sequence[Any]:
    if user_key is None:
        return [""] * n
    if user_key not in kwargs:
        columns = sorted(k for k in kwargs if k not in ("completion_ids", "trainer_state"))
        raise KeyError(
            f"reward_function: no column {user_key!r} in the batch (columns: {columns}); "
            "pass user_key= the column that holds user ids, or user_key=None for the "
            "population reward"
        )
    users = kwargs[user_key]
    if isinstance(users, (str, int)) or users is None:
        return [users] * n
    return list(users)


class _Batch:
    """One call's samples turned into items, and where each result goes."""

    def __init__(self, template, prompts, completions, users, missing_user, stats):
        self.rewards: List[Optional[float]] = [None] * len(completions)
        self.items: List[Tuple[str, str, str]] = []
        self.slots: List[int] = []
        self.stats = stats
        self.unscored: Counter = Counter()
        for i, (p, c) in enumerate(zip(prompts, completions)):
            user = _user(users[i] if i < len(users) else None, i, missing_user)
            if user is None:
                self.unscored["missing_user"] += 1
                continue
            try:
                item = (user, template.prompt(p), template.completion(c))
            except Unscorable as e:
                self.unscored[e.reason] += 1
                continue
            if user == "":
                stats["population"] += 1
            self.items.append(item)
            self.slots.append(i)

    def fill(self, outcomes) -> List[Optional[float]]:
        for slot, outcome in zip(self.slots, outcomes):
            if isinstance(outcome, ItemError):
                self.unscored[outcome.code.name] += 1
                continue
            if outcome.user_unknown:
                self.stats["unknown_user_population"] += 1
            self.rewards[slot] = outcome.reward
            self.stats["scored"] += 1
        for reason, n in self.unscored.items():
            self.stats[f"not_scored:{reason}"] += n
        if self.unscored:
            log.warning(
                "copl reward: %d of %d samples not scored (None): %s",
                sum(self.unscored.values()),
                len(self.rewards),
                dict(self.unscored),
            )
        return self.rewards


def _check(missing_user: str, unknown_user: str) -> None:
    if missing_user not in ("population", "none"):
        raise ValueError(f"missing_user={missing_user!r}: use 'population' or 'none'")
    if unknown_user not in ("population", "none"):
        raise ValueError(f"unknown_user={unknown_user!r}: use 'none' or 'population'")


class _Rules:
    """One reward function's settings, counters and template (shared by the blocking and
    the async variant)."""

    def __init__(self, user_key, missing_user, unknown_user, truncate, text_template):
        _check(missing_user, unknown_user)
        self.user_key = user_key
        self.missing_user = missing_user
        self.unknown_user = "population" if unknown_user == "population" else "error"
        self.truncate = truncate
        self.stats: Counter = Counter()
        self.template = Template(text_template) if text_template is not None else None

    def needs_template(self, prompts) -> bool:
        """Plain text needs no template: the server is asked only for conversations."""
        return self.template is None and any(not isinstance(p, str) for p in prompts)

    def batch(self, prompts, completions, kwargs) -> "_Batch":
        users = _users(kwargs, len(completions), self.user_key)
        template = self.template or _PLAIN
        return _Batch(template, prompts, completions, users, self.missing_user, self.stats)

    def send_args(self) -> dict:
        return dict(truncate=self.truncate, per_item_errors=True, unknown_user=self.unknown_user)


_PLAIN = Template("pair")


def async_reward_function(
    client,
    *,
    user_key: Optional[str] = "user_id",
    missing_user: str = "population",
    unknown_user: str = "none",
    truncate: bool = True,
    text_template: Optional[str] = None,
):
    """As ``reward_function`` over an ``AsyncCoplClient``: a coroutine function, for TRL's
    async reward functions (or any asyncio pipeline)."""
    rules = _Rules(user_key, missing_user, unknown_user, truncate, text_template)

    async def copl_reward(prompts, completions, **kwargs) -> List[Optional[float]]:
        if rules.needs_template(prompts):
            rules.template = Template((await client.info()).text_template)
        batch = rules.batch(prompts, completions, kwargs)
        outcomes = (
            await client.score_batch(batch.items, **rules.send_args()) if batch.items else []
        )
        return batch.fill(outcomes)

    copl_reward.__name__ = "copl_reward"
    copl_reward.stats = rules.stats  # type: ignore[attr-defined]
    return copl_reward


def reward_function(
    client,
    *,
    user_key: Optional[str] = "user_id",
    missing_user: str = "population",
    unknown_user: str = "none",
    truncate: bool = True,
    text_template: Optional[str] = None,
) -> Callable[..., List[Optional[float]]]:
    """A GRPOTrainer reward function scoring each completion for its sample's user (see
    the module's text for every rule). ``text_template`` defaults to the server's
    (``Info``, asked once, on the first conversational batch)."""
    rules = _Rules(user_key, missing_user, unknown_user, truncate, text_template)

    def copl_reward(prompts, completions, **kwargs) -> List[Optional[float]]:
        if rules.needs_template(prompts):
            rules.template = Template(client.info().text_template)
        batch = rules.batch(prompts, completions, kwargs)
        outcomes = client.score_batch(batch.items, **rules.send_args()) if batch.items else []
        return batch.fill(outcomes)

    copl_reward.__name__ = "copl_reward"
    copl_reward.stats = rules.stats  # type: ignore[attr-defined]
    return copl_reward
