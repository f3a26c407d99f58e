"""The application layer: use cases that combine the core (bot), storage and channels.

Blueprints and commands in ``palaute`` call these; nothing in bot, channels or storage
imports them.
"""
