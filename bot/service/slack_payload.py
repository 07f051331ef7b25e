"""The shape a Slack payload must have before Bolt sees it, on both transports.

Bolt dereferences payloads directly (``body["event"]["type"]``, ``body["actions"][0]``,
``"id" in payload["team"]``, ``len(payload["authorizations"])`` …) and reports any surprise
as an HTTP 500 with a traceback, or — in Socket Mode — as a logged exception and an envelope
never acknowledged. Slack itself never sends such payloads, so anything that does not match
what Slack sends is refused here, up front, with a one-line reason: HTTP 400, or a WARNING and
an ack in Socket Mode.

A click with no usable action (``actions`` empty or null, an action without an ``action_id``)
is well-formed: it passes here and the guard in ``handlers/`` that runs ahead of every
listener acknowledges it with 200 and ignores it (issue 15). Wrong types (``actions`` not a
list, an action that is not an object) are malformed like any other field.

Only the fields Bolt and the handlers read are checked, and only their types (plus the few a
payload type cannot do without), so a field Slack adds tomorrow passes. Every string in the
payload must also be valid Unicode: JSON allows lone surrogates (``"\\ud800"``), which no
Slack payload carries and which fail later when the text is encoded for a log line or a reply.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MalformedPayload", "dumps_reason", "parse_http_body", "payload_problem"]

_S = (str, type(None))  # an optional string
_SD = (str, dict, type(None))  # an id or an object carrying one (Bolt accepts both)
_B = (bool, str, type(None))  # form-encoded payloads (slash commands) carry booleans as text
_D = (dict, type(None))
_L = (list, type(None))

#: Field types at the top of a payload (Events API body, interaction payload, slash command form).
_TOP: dict[str, tuple[type, ...]] = {
    "type": _S, "token": _S, "team_id": _S, "enterprise_id": _S, "api_app_id": _S, "event_id": _S,
    "event_time": (int, type(None)), "command": _S, "text": _S, "user_id": _S, "user_name": _S,
    "channel_id": _S, "channel_name": _S, "response_url": _S, "trigger_id": _S, "callback_id": _S,
    "action_id": _S, "block_id": _S, "challenge": _S, "context_team_id": _S, "context_enterprise_id": _S,
    "function_execution_id": _S, "bot_access_token": _S, "is_enterprise_install": _B,
    "is_ext_shared_channel": _B, "user": _SD, "channel": _SD, "team": _SD, "enterprise": _SD,
    "authorizations": _L, "event": _D, "view": _D, "actions": _L, "container": _D, "message": _D,
    "previous_message": _D, "state": _D, "item": _D, "assistant_thread": _D, "function_data": _D,
}  # fmt: skip
#: Inside ``event`` (and the ``message`` / ``previous_message`` objects Bolt and the handlers read).
_EVENT: dict[str, tuple[type, ...]] = {
    "type": _S, "subtype": _S, "text": _S, "user": _SD, "channel": _SD, "ts": _S, "thread_ts": _S,
    "event_ts": _S, "channel_type": _S, "bot_id": _S, "team": _SD, "user_team": _S, "source_team": _S,
    "tab": _S, "client_msg_id": _S, "function_execution_id": _S, "bot_access_token": _S,
    "message": _D, "previous_message": _D, "item": _D, "assistant_thread": _D, "files": _L, "blocks": _L,
    "attachments": _L, "bot_profile": _D, "edited": _D, "hidden": _B, "enterprise": _SD,
}  # fmt: skip
_ID_OBJECT: dict[str, tuple[type, ...]] = {
    "id": _S, "team_id": _S, "enterprise_id": _S, "name": _S, "username": _S, "domain": _S,
}  # fmt: skip
_AUTHORIZATION: dict[str, tuple[type, ...]] = {
    "team_id": _S, "enterprise_id": _S, "user_id": _S, "is_bot": _B, "is_enterprise_install": _B,
}  # fmt: skip
_VIEW: dict[str, tuple[type, ...]] = {
    "id": _S, "type": _S, "callback_id": _S, "private_metadata": _S, "team_id": _S,
    "app_installed_team_id": _S, "hash": _S, "external_id": _S, "state": _D, "blocks": _L,
}  # fmt: skip
_ACTION: dict[str, tuple[type, ...]] = {
    "action_id": _S, "block_id": _S, "type": _S, "value": _S, "action_ts": _S, "selected_option": _D,
}  # fmt: skip
_CONTAINER: dict[str, tuple[type, ...]] = {
    "type": _S, "message_ts": _S, "channel_id": _S, "thread_ts": _S, "view_id": _S, "is_ephemeral": _B,
}  # fmt: skip
_ITEM: dict[str, tuple[type, ...]] = {"type": _S, "channel": _SD, "ts": _S}
_FILE: dict[str, tuple[type, ...]] = {"id": _S, "name": _S, "mode": _S, "url_private": _S}

#: Payload types that cannot do without a field (Bolt reads it unconditionally).
_REQUIRED: dict[str, tuple[str, ...]] = {
    "event_callback": ("event",),
    "url_verification": ("challenge",),
    "view_submission": ("view",),
    "view_closed": ("view",),
    "shortcut": ("callback_id",),
    "message_action": ("callback_id",),
    "interactive_message": ("callback_id",),
    "dialog_submission": ("callback_id",),
    "dialog_cancellation": ("callback_id",),
    "workflow_step_edit": ("callback_id",),
    "dialog_suggestion": ("callback_id",),
    "block_suggestion": ("action_id",),
}


#: Interaction payloads: Slack always sends ``user``/``team``/``channel`` as objects there.
_INTERACTIVE = {
    "block_actions", "view_submission", "view_closed", "shortcut", "message_action", "block_suggestion",
    "interactive_message", "dialog_submission", "dialog_cancellation", "dialog_suggestion", "workflow_step_edit",
}  # fmt: skip


class MalformedPayload(ValueError):
    """A signed request whose body is not a Slack payload (the message says why, briefly)."""


def parse_http_body(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """Parse a request body exactly as Bolt will (JSON, ``payload=`` form or plain form).

    Raises :class:`MalformedPayload` for non-UTF-8 bytes, broken or over-deep JSON, and
    anything that is not one JSON object; the payload's shape is :func:`payload_problem`'s job.
    """
    from slack_bolt.request.internals import parse_body

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPayload("body is not UTF-8") from None
    kind = content_type.split(";")[0] if content_type else None  # exactly Bolt's extract_content_type
    try:
        parsed = parse_body(text, kind)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        raise MalformedPayload("body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise MalformedPayload(f"payload is a JSON {_json_type(parsed)}, not an object")
    return parsed


def payload_problem(payload: Any) -> str | None:
    """Why ``payload`` is not something Slack sends (one line), or None when it looks right."""
    if not isinstance(payload, dict):
        return f"payload is a {_json_type(payload)}, not an object"
    bad_text = _lone_surrogate(payload)
    if bad_text:
        return bad_text
    kind = payload.get("type")
    if kind is None and "command" not in payload and "ssl_check" not in payload:
        return "no payload type"
    problem = _fields(payload, _TOP, "")
    if problem:
        return problem
    for name in _REQUIRED.get(str(kind), ()):
        if payload.get(name) in (None, "", []):
            return f"{kind} payload without {name}"
    if kind in _INTERACTIVE:
        for name in ("user", "team", "channel"):
            if isinstance(payload.get(name), str):
                return f"{kind} payload with {name} as a string, not an object"
    checks: list[tuple[Any, dict[str, tuple[type, ...]], str]] = []
    event = payload.get("event")
    if isinstance(event, dict):
        if not isinstance(event.get("type"), str):
            return "event without a type"
        checks.append((event, _EVENT, "event."))
        for name in ("message", "previous_message"):
            if isinstance(event.get(name), dict):
                checks.append((event[name], _EVENT, f"event.{name}."))
        if isinstance(event.get("item"), dict):
            checks.append((event["item"], _ITEM, "event.item."))
        checks += [(f, _FILE, "event.files[].") for f in event.get("files") or []]
        checks += [
            (v, _ID_OBJECT, f"event.{k}.") for k, v in event.items() if k in ("user", "channel", "team") and isinstance(v, dict)
        ]
    for name in ("message", "previous_message"):
        if isinstance(payload.get(name), dict):
            checks.append((payload[name], _EVENT, f"{name}."))
    for name in ("user", "channel", "team", "enterprise"):
        if isinstance(payload.get(name), dict):
            checks.append((payload[name], _ID_OBJECT, f"{name}."))
    if isinstance(payload.get("view"), dict):
        checks.append((payload["view"], _VIEW, "view."))
        if kind in ("view_submission", "view_closed") and not isinstance(payload["view"].get("callback_id"), str):
            return f"{kind} payload without view.callback_id"
    if isinstance(payload.get("container"), dict):
        checks.append((payload["container"], _CONTAINER, "container."))
    if isinstance(payload.get("item"), dict):
        checks.append((payload["item"], _ITEM, "item."))
    checks += [(a, _AUTHORIZATION, "authorizations[].") for a in payload.get("authorizations") or []]
    checks += [(a, _ACTION, "actions[].") for a in payload.get("actions") or []]
    for obj, spec, where in checks:
        if not isinstance(obj, dict):
            return f"{where.rstrip('.')} is a {_json_type(obj)}, not an object"
        problem = _fields(obj, spec, where)
        if problem:
            return problem
    return None


def _fields(obj: dict[str, Any], spec: dict[str, tuple[type, ...]], where: str) -> str | None:
    for name, allowed in spec.items():
        if name in obj and not isinstance(obj[name], allowed):
            return f"{where}{name} is a {_json_type(obj[name])}"
    return None


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _lone_surrogate(payload: dict[str, Any]) -> str | None:
    """Walk every key and string (iteratively: the JSON may be deep) for invalid Unicode."""
    stack: list[Any] = [payload]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "payload text is not valid Unicode"
    return None


def dumps_reason(reason: str) -> bytes:
    """The 400 body: Slack shows nothing of it; an operator probing by hand reads why."""
    return json.dumps({"error": "malformed request", "reason": reason}).encode()
