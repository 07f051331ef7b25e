"""Socket Mode with the same payload guard as HTTP: a malformed envelope is logged and acked.

slack_sdk's Socket Mode client parses each websocket message and hands envelopes to Bolt;
anything unexpected ends in ``logger.exception`` (an ERROR traceback) and, worse, an envelope
that is never acknowledged, so Slack redelivers it. Here:

* a message that is not JSON is dropped with a WARNING (it has no envelope id to ack);
* an envelope whose payload is not what Slack sends (:func:`bot.service.slack_payload.payload_problem`)
  is acked at once and dropped, with a WARNING naming the reason;
* anything else goes to Bolt as before; a payload no listener handles is acked (Bolt leaves
  it unacknowledged, so Slack would redeliver it); if Bolt still fails to read it, the
  envelope is acked and the failure logged as a WARNING, without a traceback.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app, send_async_response
from slack_bolt.response import BoltResponse
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.service.slack_payload import payload_problem

__all__ = ["GuardedSocketModeHandler"]

log = logging.getLogger("acrcheck.socket_mode")

#: Envelope types whose payload is a Slack payload Bolt dispatches.
_DISPATCHED = {"events_api", "slash_commands", "interactive"}


class GuardedSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's ``AsyncSocketModeHandler`` behind the payload guard (see the module docstring)."""

    def __init__(self, app: Any, app_token: str, **kwargs: Any) -> None:
        super().__init__(app, app_token, **kwargs)
        client = self.client
        enqueue = client.enqueue_message

        async def enqueue_checked(message: str) -> None:
            if isinstance(message, str) and message.startswith("{"):
                try:
                    envelope = json.loads(message)
                except (ValueError, RecursionError):
                    log.warning("Socket Mode message is not valid JSON (%d chars); dropped", len(message))
                    return
                # slack_sdk raises (and never acks) on a payload that is neither object nor text, null included
                payload = envelope.get("payload") if isinstance(envelope, dict) else None
                if isinstance(envelope, dict) and "payload" in envelope and not isinstance(payload, dict | str):
                    log.warning("Socket Mode envelope %s (%s) refused: payload is not an object; acknowledged",
                                _short(envelope.get("envelope_id")), _short(envelope.get("type")))  # fmt: skip
                    await self._ack(client, envelope.get("envelope_id"))
                    return
            await enqueue(message)

        client.enqueue_message = enqueue_checked  # type: ignore[method-assign]

    async def handle(self, client: Any, req: SocketModeRequest) -> None:
        dispatched = isinstance(req.type, str) and req.type in _DISPATCHED
        problem = payload_problem(req.payload) if dispatched else None
        if not isinstance(req.type, str) or not isinstance(req.envelope_id, str):
            problem = "envelope type or id is not a string"
        elif problem is None and dispatched and (
            not isinstance(req.retry_attempt, (int, type(None))) or not isinstance(req.retry_reason, (str, type(None)))
        ):
            problem = "retry fields of the wrong type"
        if problem is not None:
            log.warning("Socket Mode envelope %s (%s) refused: %s; acknowledged", _short(req.envelope_id),
                        _short(req.type), problem)  # fmt: skip
            await self._ack(client, req.envelope_id)
            return
        try:
            started = time.time()
            response = await run_async_bolt_app(self.app, req)
            if response.status == 404:  # no listener for it: acknowledge, post nothing (as over HTTP)
                response = BoltResponse(status=200, body="")
            await send_async_response(client, req, response, started)
        except Exception as exc:
            log.warning("Socket Mode envelope %s (%s) could not be handled (%s); acknowledged",
                        _short(req.envelope_id), _short(req.type), type(exc).__name__)  # fmt: skip
            await self._ack(client, req.envelope_id)

    @staticmethod
    async def _ack(client: Any, envelope_id: Any) -> None:
        if isinstance(envelope_id, str) and envelope_id:
            try:
                await client.send_socket_mode_response(SocketModeResponse(envelope_id=envelope_id))
            except Exception as exc:
                log.warning("could not acknowledge Socket Mode envelope (%s)", type(exc).__name__)


def _short(value: Any) -> str:
    """Envelope ids and types are echoed into the log: keep them short and printable."""
    text = value if isinstance(value, str) else type(value).__name__
    return "".join(c if c.isprintable() else "?" for c in text[:64])
