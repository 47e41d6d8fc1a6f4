"""Remediations behind approval: the action catalog, dry runs against the live target, the
approval policy, the request state machine and one executor per system. No Slack here."""
