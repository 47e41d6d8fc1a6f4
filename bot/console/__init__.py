"""`chatops-bot console`: the real bot and a pretend Slack workspace in one terminal.

A product feature for trying the bot without Slack, and the home of the Slack double the tests
use. Not part of the production image: `chatops-bot run` never imports this package.

- `app`: the conversation (what a person types becomes what Slack would send).
- `render`: Block Kit and mrkdwn as terminal text (pure functions).
- `workspace`: the in-process Slack workspace (Web API, response_url, Socket Mode).
"""
