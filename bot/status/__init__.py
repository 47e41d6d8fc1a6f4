"""The public status page: components and the incidents a person chose to publish, as HTML,
JSON and an Atom feed (bot.status.render), served by bot.server from an in-process cache
(bot.status.page). Publishing is an incident change (bot.status.service). No Slack here.

Kept free of imports: bot.policy reads bot.policy.status_page, and the rest reads the policy.
"""
