"""Incidents: declaring, the lifecycle, roles, the timeline and what each change tells Slack."""
