"""After the incident: the post-incident report, action items and their reminders, statistics
and charts and similar past incidents. No Slack imports here."""
