"""A Slack Web API client that counts what it sends and what fails, for ``/metrics``.

Every Web API method of slack_sdk's ``AsyncWebClient`` goes through ``api_call``, so
counting there covers all listeners and the scheduler's poster without touching them.
Calls that fail are counted with Slack's error code (``ratelimited``, ``channel_not_found``,
``invalid_auth``…), which is what an operator alerts on.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot import metrics


class MeteredWebClient(AsyncWebClient):
    """``AsyncWebClient`` plus Prometheus counters; behaviour is otherwise unchanged."""

    @classmethod
    def wrap(cls, client: AsyncWebClient) -> AsyncWebClient:
        """A metered twin of ``client`` (same token, URL, session, retries).

        Bolt builds a plain client for every request (so listeners can't race on a shared
        token); the app's middleware swaps it for this one.
        """
        if isinstance(client, cls):
            return client
        return cls(
            token=client.token,
            base_url=client.base_url,
            timeout=client.timeout,
            ssl=client.ssl,
            proxy=client.proxy,
            session=client.session,
            trust_env_in_session=client.trust_env_in_session,
            headers=client.headers,
            team_id=client.default_params.get("team_id"),
            logger=client.logger,
            retry_handlers=list(client.retry_handlers) if client.retry_handlers is not None else None,
        )

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        try:
            response = await super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            metrics.record_slack_error(api_method, str(error or "unknown"))
            raise
        except Exception as exc:
            metrics.record_slack_error(api_method, type(exc).__name__)
            raise
        metrics.record_slack_call(api_method)
        return response
