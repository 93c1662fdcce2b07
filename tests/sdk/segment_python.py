"""Sends one message of each type through Segment's own Python library.

Usage: segment_python.py HOST WRITE_KEY
Exits non-zero if the library reports any error.
"""
import sys
from datetime import datetime, timezone

from segment.analytics import Client

host, write_key = sys.argv[1], sys.argv[2]
errors = []
client = Client(
    write_key,
    host=host,
    gzip=True,
    sync_mode=True,
    max_retries=0,
    on_error=lambda error, batch: errors.append(repr(error)),
)
when = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
client.identify("sdk-user", {"email": "sdk@example.com", "plan": "pro"}, timestamp=when, message_id="sdk-identify")
client.track("sdk-user", "Order Completed", {"revenue": 42.5, "currency": "EUR"}, timestamp=when, message_id="sdk-track")
client.page("sdk-user", "Docs", "Getting Started", {"path": "/docs/start"}, timestamp=when, message_id="sdk-page")
client.screen("sdk-user", "App", "Home", {"tab": "feed"}, timestamp=when, message_id="sdk-screen")
client.group("sdk-user", "acme", {"name": "Acme"}, timestamp=when, message_id="sdk-group")
client.alias("sdk-anon", "sdk-user", timestamp=when, message_id="sdk-alias")
client.flush()
if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
