"""Alerts in: Alertmanager, Grafana and generic webhooks -> routes -> one incident per
service -> declare, attach or reopen -> auto-diagnose; Alertmanager silences out.

No Slack here: what Slack hears goes through the outbox (bot.alerts.delivery) to a notifier
port that bot/slack implements.
"""
