"""A referrer's rest-hook endpoint for the service's Subscriptions (see
docs/referring/subscriptions.md): `python examples/subscription_receiver.py 8765`, then
subscribe http://127.0.0.1:8765/hook. Delivery is at least once and may repeat or reorder a
notification: the receiver keeps each event once, by its event number."""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def take(bundle, seen):
    """Fold one notification into `seen` ({event number: Task, or its reference}); its type."""
    status = bundle["entry"][0]["resource"]["parameter"]
    kind = next(p["valueCode"] for p in status if p["name"] == "type")
    focus = {e["fullUrl"]: e.get("resource", e["fullUrl"]) for e in bundle["entry"][1:]}
    for event in (p for p in status if p["name"] == "notification-event"):
        parts = {part["name"]: part for part in event["part"]}
        reference = parts.get("focus", {}).get("valueReference", {}).get("reference")
        seen.setdefault(int(parts["event-number"]["valueString"]), focus.get(reference, reference))
    return kind


class Hook(BaseHTTPRequestHandler):
    seen: dict = {}

    def do_POST(self):
        kind = take(json.loads(self.rfile.read(int(self.headers["Content-Length"]))), self.seen)
        self.send_response(200)
        self.end_headers()
        print(kind, sorted(self.seen))


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    ThreadingHTTPServer(("127.0.0.1", port), Hook).serve_forever()
