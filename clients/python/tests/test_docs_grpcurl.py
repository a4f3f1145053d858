"""docs/operations.md's grpcurl lines name real methods and send bodies of their request
messages: each `-d '{…}'` JSON (and each ScoreStream line fed on stdin) is parsed into the
method's request type with protobuf's JSON parser (grpcurl's rules: proto field names,
enum value names; an unknown field is an error), from the stubs generated from
proto/copl/v1/reward.proto. (grpcurl itself is not installable here.)
"""

import pathlib
import re

from google.protobuf import json_format

from copl_client.v1 import reward_pb2

DOC = pathlib.Path(__file__).resolve().parents[3] / "docs" / "operations.md"
SERVICE = reward_pb2.DESCRIPTOR.services_by_name["RewardService"]


def grpcurl_block() -> str:
    text = DOC.read_text()
    section = text.split("## grpcurl: every RPC", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "no sh block under 'grpcurl: every RPC'"
    return match.group(1)


def commands(block: str):
    """Each command (continuation lines joined; printf feeding a pipe joined to it)."""
    joined = re.sub(r"\\\n\s*", " ", block)
    joined = re.sub(r"\|\n\s*", "| ", joined)
    out, current = [], ""
    for line in joined.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        current = f"{current}\n{line}" if current and current.count("'") % 2 else line
        if current.count("'") % 2 == 0:
            out.append(current)
            current = ""
    return out


def test_every_rpc_has_a_grpcurl_line_and_every_body_parses():
    block = grpcurl_block()
    called = set()
    for command in commands(block):
        method = re.search(r"copl\.v1\.RewardService/(\w+)", command)
        if not method:
            continue
        name = method.group(1)
        assert name in SERVICE.methods_by_name, f"no RPC {name}"
        request_type = SERVICE.methods_by_name[name].input_type
        message_class = getattr(reward_pb2, request_type.name)
        bodies = re.findall(r"'(\{.*?\})'", command, re.S)
        if name == "ScoreStream":
            assert len(bodies) >= 2, command
        for body in bodies:
            json_format.Parse(body, message_class())  # raises on a wrong field or value
        called.add(name)
    assert called == set(SERVICE.methods_by_name), set(SERVICE.methods_by_name) - called
