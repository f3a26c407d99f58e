"""Twilio SMS: Twilio's webhook and REST shapes <-> the core's messages."""
