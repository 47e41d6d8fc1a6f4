"""JSON from outside the bot (a monitor's post, a paging service's or Alertmanager's
answer), read strictly, in one place.

`json.loads` takes what no store, hash or log can: a lone surrogate (`"\\ud800"`, which UTF-8
cannot encode: PostgreSQL, the audit's hash and the Slack payload refuse it later, far from
the edge), NaN, and nesting past Python's recursion limit (a RecursionError, which no
`except ValueError` catches). pydantic-core's parser (the one `model_validate_json` uses at
the webhooks) refuses each as a ValueError, at once, and limits nesting by itself.
"""

from __future__ import annotations

from typing import Any

from pydantic_core import from_json


def loads(text: str | bytes) -> Any:
    """`text` as JSON (objects, arrays, strings, numbers, booleans, null); ValueError for
    anything else: not JSON, not UTF-8, a lone surrogate, NaN or Infinity, nested past 200.
    A number past a float's range (1e999) reads as inf: no caller takes a float from outside."""
    return from_json(text, allow_inf_nan=False)
