"""Pure text to diagnosis: no network, no Slack, no database."""
