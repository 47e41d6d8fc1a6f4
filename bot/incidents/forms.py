"""Modal input -> command models: the declaration form and the "Post update" form.

Errors are FormErrors, a message per field, shown beside the fields in the modal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from bot.errors import UsageError
from bot.incidents.parsing import SEVERITIES, pydantic_problem
from bot.incidents.schemas import (
    IMPACT_MAX,
    MESSAGE_MAX,
    PUBLISH_OPTION,
    TITLE_MAX,
    USER_TEXT_ERROR,
    DeclareIncident,
    UpdateStatus,
)
from bot.incidents.update_parsing import STATUSES, parse_duration
from bot.models import Incident, Severity, Status

M = TypeVar("M", bound=BaseModel)


class FormErrors(UsageError):
    """A modal's input was wrong: a message per field, shown beside the fields."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


FormValue = str | Sequence[str] | None


def _text(fields: Mapping[str, FormValue], name: str) -> str:
    value = fields.get(name)
    return " ".join(value.split()) if isinstance(value, str) else ""


def parse_declare_form(fields: Mapping[str, FormValue]) -> DeclareIncident:
    """The declaration modal: title, severity, impact, affected services (each once, in
    lowercase as the catalog names it)."""
    errors: dict[str, str] = {}
    title = _text(fields, "title")
    severity = _text(fields, "severity").upper()
    impact = (fields.get("impact") or "") if isinstance(fields.get("impact"), str) else ""
    if not title:
        errors["title"] = "Give the incident a title."
    elif len(title) > TITLE_MAX:
        errors["title"] = f"Keep the title to {TITLE_MAX} characters (it has {len(title)})."
    if severity not in Severity.__members__:
        errors["severity"] = f"Pick a severity: {SEVERITIES}."
    if isinstance(impact, str) and len(impact.strip()) > IMPACT_MAX:
        errors["impact"] = f"Keep the impact to {IMPACT_MAX} characters."
    services = fields.get("services")
    if isinstance(services, str):
        names = [name.strip() for name in services.split(",")]
    else:
        names = [str(name).strip() for name in services or []]
    if errors:
        raise FormErrors(errors)
    return _build_form(
        DeclareIncident,
        severity=severity,
        title=title,
        impact=impact.strip() if isinstance(impact, str) else "",
        # Catalog names are lowercase (check_service_names) and /diagnose folds case, so
        # "Web" and "web" are one service, named as the catalog names it.
        services=tuple(dict.fromkeys(name.lower() for name in names if name)),
    )


def _build_form(model: type[M], **fields: Any) -> M:
    """Validate into `model`; every field that fails gets its message beside it."""
    try:
        return model(**fields)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "message"
            message = error["msg"] if error["type"] == USER_TEXT_ERROR else pydantic_problem(error)
            errors.setdefault(field, str(message))
        raise FormErrors(errors) from None


def _checked(value: FormValue, option: str) -> bool:
    """Whether a checkbox group's selected values hold `option`."""
    return not isinstance(value, str) and option in (value or ())


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def update_form_shown(incident: Incident) -> dict[str, str]:
    """What the "Post update" form shows prefilled (its status, a digest of its impact), kept
    in the form so that a submission can tell what its author left untouched."""
    return {"status": incident.status.value, "impact": _digest(incident.impact.strip())}


def parse_update_form(
    incident_id: str, fields: Mapping[str, FormValue], shown: Mapping[str, str] | None = None
) -> UpdateStatus:
    """The "Post update" modal: status, current status, ETA (a duration), impact, and
    whether to publish it on the status page.

    With `shown` (update_form_shown when it opened), what was left as it was shown does not
    undo an update posted meanwhile: an untouched impact is not sent, and an untouched
    status gives way to a later one (UpdateStatus.status_untouched)."""
    errors: dict[str, str] = {}
    status = _text(fields, "status").lower()
    raw_message = fields.get("message")
    message = raw_message.strip() if isinstance(raw_message, str) else ""
    eta_text = _text(fields, "eta")
    raw_impact = fields.get("impact")
    impact = raw_impact.strip() if isinstance(raw_impact, str) else ""
    eta: timedelta | None = None
    if status not in Status.__members__.values():
        errors["status"] = f"Pick a status: {STATUSES}."
    if not message:
        errors["message"] = "Say what is happening and what is being done."
    elif len(message) > MESSAGE_MAX:
        errors["message"] = f"Keep it to {MESSAGE_MAX} characters (it has {len(message)})."
    if eta_text:
        try:
            eta = parse_duration(eta_text)
        except UsageError as exc:
            errors["eta"] = str(exc)
    if len(impact) > IMPACT_MAX:
        errors["impact"] = f"Keep the impact to {IMPACT_MAX} characters."
    if errors:
        raise FormErrors(errors)
    shown = shown or {}
    if impact and shown.get("impact") == _digest(impact):
        impact = ""  # as prefilled: whatever the impact is now stands
    return _build_form(
        UpdateStatus,
        incident_id=incident_id,
        status=status,
        message=message,
        eta=eta,
        impact=impact or None,
        publish=_checked(fields.get("publish"), PUBLISH_OPTION),
        status_untouched=shown.get("status") == status,
    )
