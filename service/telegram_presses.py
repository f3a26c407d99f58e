"""Telegram use cases beside the conversation: blocked/unblocked chats and button presses.

A press's Bot API calls (``answerCallbackQuery``, the ``editMessageText`` that shows the
chosen answer) are stored (``storage.telegram``) atomically with the answer, for the
Telegram worker to make.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session

from bot.run import RunState
from channels.telegram import CHANNEL, keyboards
from channels.telegram.updates import CallbackPress
from storage import telegram as telegram_store
from storage.contacts import ContactStore
from storage.db import transaction

log = logging.getLogger(__name__)


def set_reachable(
    engine: Engine, contacts: ContactStore, chat_id: str, reachable: bool, now: datetime
) -> None:
    """The person blocked the bot (unreachable until they start it again) or unblocked it."""
    with transaction(engine) as session:
        found = contacts.find(session, CHANNEL, chat_id)
        if found is None:
            return
        if not reachable:
            contacts.mark_unreachable(session, found.id, "telegram: blocked the bot", now)
        else:
            contacts.clear_unreachable(session, found.id, now)
    log.info("Telegram chat %s: %s", found.id, "unblocked" if reachable else "blocked")


def press_guard(press: CallbackPress, when: datetime) -> Callable[[Session, RunState | None], bool]:
    """Inside the press's conversation transaction (contact locked, press not seen before):
    store its Bot API calls and tell whether it answers the question the run waits on.

    A stale press (a button of a question the run no longer waits on, or no run at all)
    only has its buttons removed and records nothing else. A redelivered press never gets
    here (the conversation answers it with the stored reply), so its calls are stored once.
    Both sets of calls are built here, before the transaction, which only picks one.
    """
    chosen = keyboards.edit_chosen_params(press, chosen=True)
    fresh_calls = [("answerCallbackQuery", keyboards.answer_callback_params(press))]
    if chosen is not None:
        fresh_calls.append(("editMessageText", chosen))
    unchanged = keyboards.edit_chosen_params(press, chosen=False)
    stale_calls = [("editMessageText", unchanged)] if unchanged is not None else []

    def guard(session: Session, run: RunState | None) -> bool:
        step = run.current_step if run is not None else None
        fresh = press.step_id is None or step == press.step_id
        telegram_store.enqueue_calls(
            session, fresh_calls if fresh else stale_calls, press.chat_id, when
        )
        return fresh

    return guard
