"""Telegram: Bot API updates and calls <-> the core's messages.

* ``updates``: a webhook body -> ``Handled`` (a message, a press, blocked/unblocked),
  ``Ignored`` with the reason, or ``Rejected`` (``channels.base``).
* ``keyboards``: what we send: ``sendMessage`` parameters with inline keyboards, the
  button callback data, the calls that answer a press, deep links.
* ``sender``: ``TelegramSender``, Bot API calls for the outbox worker and the CLI.
"""

CHANNEL = "telegram"
