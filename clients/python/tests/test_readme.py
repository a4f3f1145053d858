"""The README's "Use it from TRL / OpenRLHF" snippet, run as written against the live
server of `tests/tests/python_client.rs` (its address and seen user put in for the
example's, the trainer line — `GRPOTrainer(...)` with an ellipsis — left out; TRL
itself is exercised in test_trl_grpo.py): what the README promises is what it does.
"""

import math
import os
import pathlib
import re

ADDR = os.environ["COPL_ADDR"]
SEEN = os.environ["COPL_SEEN_USER"]
README = pathlib.Path(__file__).resolve().parents[3] / "README.md"


def snippet() -> str:
    text = README.read_text()
    section = text.split("### Use it from TRL / OpenRLHF", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no python block under 'Use it from TRL / OpenRLHF'"
    return match.group(1)


def test_the_readmes_trl_snippet_runs_and_says_what_it_returns():
    code = snippet()
    assert 'CoplClient("dns:///copl-headless:50051")' in code
    code = code.replace("dns:///copl-headless:50051", ADDR).replace("user-00000", SEEN)
    lines = []
    for line in code.splitlines():
        if line.startswith("trainer = GRPOTrainer("):
            continue
        if line.startswith("reward("):
            line = "result = " + line  # its continuation line stays inside the parentheses
        lines.append(line)
    namespace: dict = {}
    exec("\n".join(lines), namespace)  # noqa: S102 - the README's own code
    result = namespace["result"]
    # The README says: "# -> [0.41, None]   (None: a blank completion ...)".
    assert "# -> [0.41, None]" in code
    assert len(result) == 2
    assert isinstance(result[0], float) and math.isfinite(result[0])
    assert result[1] is None
    assert namespace["reward"].stats["scored"] == 1
    namespace["client"].close()
