"""Scheduled health posts for watched registries (``/acrcheck watch``).

Entry point for the bot: :func:`bot.scheduler.service.start_scheduler`.
"""
