"""Paging services (PagerDuty, Opsgenie) as escalation targets; no Slack imports here.

`config` holds the policy's `paging:` models, `http` the one place provider errors become
NotifierError, `pagerduty` and `opsgenie` the adapters, `webhooks` verification and parsing of
what the providers send back, `oncall` who is on call now, `service` the lifecycle listener
and the outbox handlers, `routes` the webhook endpoints of the web app.
"""
