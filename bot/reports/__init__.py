"""After the incident: the post-incident report, action items and their reminders, statistics
and charts, the App Home's facts and similar past incidents. No Slack imports here."""
