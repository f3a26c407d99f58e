"""Telegram: Bot API updates and calls <-> the core's messages."""
