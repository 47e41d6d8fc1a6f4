"""Slack messages, modals and workspace events as terminal text, for `chatops-bot console`.

Pure functions: Block Kit and mrkdwn in, lines of text out. No I/O, no Slack client, so every
rule here is unit-tested (tests/unit/test_console_render.py) and the console only decides
*when* to print.

- Headers are uppercase (and bold with colour), section fields read `Label: value`, context
  lines are dimmed, dividers are a rule.
- mrkdwn is cleaned up: `<@U1>` -> `@name`, `<#C1>` -> `#name`, `<!date^...|fallback>` ->
  fallback, `<!subteam^S1>` -> `@group`, links -> `label (url)`, `*bold*` -> bold, entities
  decoded, `:emoji:` -> the character when the terminal speaks UTF-8 (rich's emoji names).
- Interactive elements get a number (`[1] Acknowledge`) handed out by the caller, so the
  console can keep numbers stable when a message is edited.

`text` holds styles, names and mrkdwn; `messages` blocks and messages; `controls` their
numbered interactive elements; `notices` workspace changes; `forms` modals.
"""

from bot.console.render.controls import (
    CLICKABLE,
    Control,
    Numbering,
    Option,
    confirm_question,
    counter,
    find_element,
    options_of,
    with_block_ids,
)
from bot.console.render.forms import (
    InputField,
    field_names,
    field_prompt,
    input_fields,
    render_view,
    state_value,
    view_errors,
)
from bot.console.render.messages import (
    Rendered,
    changed_lines,
    headline,
    indent,
    render_blocks,
    render_field,
    render_message,
)
from bot.console.render.notices import MessageLabel, render_notice
from bot.console.render.text import (
    NO_NAMES,
    PLAIN,
    Names,
    StaticNames,
    Style,
    clean_mrkdwn,
    emojize,
    strip_ansi,
    text_of,
    unescape,
)

__all__ = [
    "CLICKABLE",
    "NO_NAMES",
    "PLAIN",
    "Control",
    "InputField",
    "MessageLabel",
    "Names",
    "Numbering",
    "Option",
    "Rendered",
    "StaticNames",
    "Style",
    "changed_lines",
    "clean_mrkdwn",
    "confirm_question",
    "counter",
    "emojize",
    "field_names",
    "field_prompt",
    "find_element",
    "headline",
    "indent",
    "input_fields",
    "options_of",
    "render_blocks",
    "render_field",
    "render_message",
    "render_notice",
    "render_view",
    "state_value",
    "strip_ansi",
    "text_of",
    "unescape",
    "view_errors",
    "with_block_ids",
]
