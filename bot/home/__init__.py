"""The App Home: what one person's Home shows, who is viewing it, and its refreshes, queued in
the transaction of every change it shows. No Slack imports here."""
