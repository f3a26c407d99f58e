"""The application layer: use cases that combine the core (``bot``), ``storage`` and
``channels``. ``palaute`` (wiring: web, CLI) calls these; nothing below imports them."""
