"""Notifications through apprise: which results are events (events.py), the message
(message.py), sending with bounded timeouts (send.py) and the server's background notifier
(notifier.py)."""
