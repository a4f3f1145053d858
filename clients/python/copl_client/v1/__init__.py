"""Generated from proto/copl/v1/reward.proto by scripts/python-client.sh gen: do not edit."""
