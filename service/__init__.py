"""The application layer: the use cases that combine the core, storage and channels.

Imports ``bot``, ``channels`` and ``storage``; nothing below it imports it, and ``palaute``
(the wiring: config, app factory, blueprints, CLI) reaches the database through it.
"""
