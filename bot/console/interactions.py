"""Pressing buttons and filling in modals at the console, as Slack would let a person.

A numbered control is pressed on its message as the message is *now*; a confirm dialog is a
y/N question first and a select asks for its option. A modal the app opens is asked field by
field; refused fields are asked again with Slack's error, and the app's answer (update,
push, errors) is followed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from bot.console.feed import ControlRef, can_see
from bot.console.parts import ConsoleParts
from bot.console.render import (
    InputField,
    Option,
    confirm_question,
    field_names,
    field_prompt,
    find_element,
    indent,
    input_fields,
    options_of,
    render_view,
    state_value,
    view_errors,
    with_block_ids,
)
from bot.slack.requests import block_actions_body, view_submission_body

_SELECTS = {"static_select", "overflow", "radio_buttons"}


class Quit(Exception):
    """The person asked to leave in the middle of a question."""


class Cancel(Exception):
    """The person cancelled a modal (or a question, with Ctrl-C)."""


class Interactions(ConsoleParts):
    """Buttons and modals; mixed into Console, which provides the rest."""

    # ----- buttons --------------------------------------------------------------------------

    def _find_message(self, ref: ControlRef) -> dict[str, Any] | None:
        if ref.ephemeral:
            for ephemeral in self.double.ephemerals:
                if ephemeral.get("message_ts") == ref.ts:
                    return with_block_ids(
                        {
                            "type": "message",
                            "ts": ref.ts,
                            "text": ephemeral.get("text", ""),
                            "blocks": ephemeral.get("blocks") or [],
                        }
                    )
            return None
        channel = self.double.channel(ref.channel_id or "")
        if channel is None:
            return None
        found = next((m for m in channel.messages if m.get("ts") == ref.ts), None)
        return with_block_ids(found) if found is not None else None

    def _ephemeral_seer(self, ref: ControlRef) -> str | None:
        """Who sees the ephemeral message `ref` is on (None: not an ephemeral one)."""
        if not ref.ephemeral:
            return None
        for ephemeral in self.double.ephemerals:
            if ephemeral.get("message_ts") == ref.ts:
                return str(ephemeral.get("user") or "") or None
        return None

    def control_element(self, number: int) -> Mapping[str, Any] | None:
        """The element behind [number] on its message as it is now (None when gone)."""
        ref = self.feed.controls.get(number)
        message = self._find_message(ref) if ref is not None else None
        if ref is None or message is None:
            return None
        blocks = list(message.get("blocks") or [])
        for attachment in message.get("attachments") or []:
            blocks += attachment.get("blocks") or []
        return find_element(blocks, ref.action_id, ref.block_id)

    async def press(self, number: int) -> None:
        """Press control [number] on its message as the message is now."""
        ref = self.feed.controls.get(number)
        if ref is None:
            self.screen.error(f"There is no button [{number}].")
            return
        message = self._find_message(ref)
        if message is None:
            self.screen.error(f"The message with [{number}] is gone.")
            return
        seer = self._ephemeral_seer(ref)
        channel = self.double.state.channels.get(ref.channel_id or "")
        if seer is None and channel is not None and channel.is_im:
            seer = channel.user  # a DM is its person's alone (the bot is the other party)
        if seer is not None and seer != self.user_id:
            # Slack shows it to them alone: nobody else can press it (an approval, a Close).
            who = self.feed.names.user(seer) or seer
            self.screen.error(
                f"[{number}] is on a message only @{who} sees (:as {seer} to press it)."
            )
            return
        if channel is not None and not can_see(channel, self.user_id):
            self.screen.error(f"[{number}] is in {self.feed.where(channel)}, which you are not in.")
            return
        element = self.control_element(number)
        if element is None:
            self.screen.error(f"[{number}] is no longer on that message.")
            return
        dialog = confirm_question(element, self.feed.names)
        if dialog is not None and not await self._yes(*dialog):
            self.screen.notice("cancelled; nothing was sent")
            return
        overrides: dict[str, Any] | None = None
        if element.get("type") in _SELECTS:
            option = await self._choose(options_of(element, self.feed.names))
            if option is None:
                self.screen.notice("cancelled; nothing was sent")
                return
            overrides = {"type": element["type"], "selected_option": dict(option.raw)}
        if element.get("url"):
            self.screen.notice(f"a browser would open {element['url']}")
        state = self.double.state
        body = block_actions_body(
            ref.action_id,
            # This element's, not the first with its action_id.
            element.get("value") if element.get("type") == "button" else None,
            block_id=ref.block_id,
            user_id=self.user_id,
            user_name=self._user_name(),
            channel_id=ref.channel_id or self.channel_id,
            channel_name=channel.name if channel else "",
            message_ts=ref.ts,
            response_url=self.double.new_response_url(
                channel=ref.channel_id, message_ts=ref.ts, user_id=self.user_id
            ),
            message=message,
            is_ephemeral=ref.ephemeral,
            team_id=state.team_id,
            api_app_id=state.app_id,
            action_overrides=overrides,
        )
        response = await self._send(body)
        if response.status == 404:
            self.screen.error(f"The app does not handle [{number}] (action {ref.action_id}).")
        elif response.status != 200:
            self.screen.error(f"The app answered [{number}] with HTTP {response.status}.")

    async def _answer(self, prompt: str) -> str:
        line = await self._ask(prompt)
        if line is None or line.strip() in (":quit", ":q", ":exit"):
            raise Quit
        return line

    async def _yes(self, question: str, choices: str) -> bool:
        # The question goes through _print so it wraps; the prompt stays short.
        self.screen.print([self.style.bold(question)])
        answer = await self._answer(choices)
        return answer.strip().lower() in ("y", "yes")

    async def _choose(self, options: Sequence[Option]) -> Option | None:
        self.screen.print([f"  {n}) {o.label}" for n, o in enumerate(options, 1)])
        while True:
            answer = (await self._answer(f"Choose 1-{len(options)} (empty to cancel)> ")).strip()
            if not answer:
                return None
            if answer.isascii() and answer.isdigit() and 1 <= int(answer) <= len(options):
                return options[int(answer) - 1]
            self.screen.error(f"Type a number from 1 to {len(options)}.")

    # ----- modals ---------------------------------------------------------------------------

    async def _open_pending_modals(self) -> None:
        while self.feed.pending_views and not self._quit:
            view_id = self.feed.pending_views.popleft()
            try:
                await self.fill_modal(view_id)
            except Quit:
                self._quit = True
            except Cancel:
                self.screen.notice("modal closed; nothing was submitted")
            await self.settle()

    async def fill_modal(self, view_id: str) -> None:
        """Ask for each input of the modal, submit it, and handle the app's answer."""
        view: dict[str, Any] = dict(self.double.views.get(view_id) or {})
        if not view:
            return
        fields = input_fields(view, self.feed.names)
        self.screen.print(["", *render_view(view, names=self.feed.names, style=self.style)])
        if not view.get("submit"):
            # Slack shows such a modal with Close only: sent, the app answered "form not known".
            self.screen.notice("nothing to submit; the modal is closed")
            return
        values: dict[str, dict[str, Any]] = {}
        to_ask = fields
        while True:
            # A refused field is asked afresh (its view default, not the refused answer, so an
            # optional field can still be left empty); accepted answers are kept.
            for field in to_ask:
                values[field.block_id] = {field.action_id: await self._ask_field(field)}
            current = dict(self.double.views.get(view_id) or view)
            current["id"] = view_id
            body = view_submission_body(
                str(current.get("callback_id", "")),
                values,
                user_id=self.user_id,
                user_name=self._user_name(),
                view=current,
                team_id=self.double.state.team_id,
                api_app_id=self.double.state.app_id,
            )
            response = await self._send(body)
            if response.status != 200:
                self.screen.error(f"The app answered the modal with HTTP {response.status}.")
                return
            answer_body = response.body if isinstance(response.body, Mapping) else {}
            action = answer_body.get("response_action")
            if action == "errors":
                errors = dict(answer_body.get("errors") or {})
                self.screen.print(
                    [
                        self.style.error("The modal was not accepted:"),
                        *indent(view_errors(errors, fields)),
                    ]
                )
                # Asked again one by one, a shared label ("Owner") says which row it is.
                names = field_names(fields)
                refused = [f for f in fields if f.block_id in errors] or fields
                to_ask = [replace(f, label=names[f.block_id]) for f in refused]
                continue
            if action in ("update", "push") and isinstance(answer_body.get("view"), Mapping):
                view = {**answer_body["view"], "id": view_id}
                fields = input_fields(view, self.feed.names)
                self.screen.print(["", *render_view(view, names=self.feed.names, style=self.style)])
                values, to_ask = {}, fields
                if not fields:
                    return
                continue
            self.screen.notice("modal submitted")
            return

    async def _ask_field(self, field: InputField) -> dict[str, Any]:
        """Ask until the answer is acceptable; returns its `state.values` leaf."""
        lines = field_prompt(field, self.style)
        self.screen.print(["", *lines[:-1]])
        while True:
            if field.multiline:
                typed = await self._multiline(lines[-1])
            else:
                typed = await self._answer(lines[-1])
            if typed.strip() == ":cancel":
                raise Cancel
            leaf, error = state_value(field, typed)
            if error is None and leaf is not None:
                return leaf
            self.screen.error(f"  {error}")

    async def _multiline(self, prompt: str) -> str:
        collected: list[str] = []
        while True:
            line = await self._answer(prompt if not collected else "  ...> ")
            if not line.strip():
                return "\n".join(collected)
            if line.strip() == ":cancel":
                return line
            collected.append(line)
