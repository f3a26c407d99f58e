"""Twilio SMS: translate between Twilio's webhook/REST shapes and the core's messages.

Nothing here knows about Flask or the database. The web layer hands in the request's
URL parts, headers and form fields; the outbox worker hands in a number and a text.

* ``signature``: the public URL Twilio called and its ``X-Twilio-Signature``.
* ``inbound``: the inbound webhook form -> ``Handled(Inbound)`` (or ``Rejected``).
* ``status``: a delivery status callback -> ``Handled(StatusUpdate)`` (or ``Ignored``,
  ``Rejected``).
* ``twiml``: text safe for SMS and XML; replies as a TwiML ``<Response>``.
* ``sender``: ``TwilioSender`` sends one message with the ``twilio`` SDK ``Client``;
  ``http``: the SDK's HTTP port it runs on (one urllib3 pool).
"""

CHANNEL = "sms"
