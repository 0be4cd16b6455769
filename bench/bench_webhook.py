"""Webhook delivery cost: one kept-alive client versus a new client per delivery.

    python bench/bench_webhook.py [--deliveries N] [--repeats R]

Posts N signed escalation webhooks through the bundled WebhookNotifier to a
local HTTP/1.1 receiver (keep-alive, as production receivers are), one after
another as one scheduler thread does; prints the median per-delivery time of R
repeats for the plugin as it is (one client, connections reused) and with its
client dropped after every delivery (what it did before).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "plugins"))

from slaengine.escalation import Action, EscalationContext  # noqa: E402
from slaengine_plugins.webhook import WebhookNotifier  # noqa: E402


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def run(plugin: WebhookNotifier, n: int, fresh: bool) -> float:
    action = Action(type="notify", params={"to": "duty-manager"})
    t0 = time.perf_counter()
    for i in range(n):
        context = EscalationContext(
            ticket_id=f"INC-{i}",
            metric="resolution",
            cycle=1,
            threshold="75%",
            instant=datetime.fromisoformat("2026-11-23T12:00:00+08:00"),
            action_index=0,
            plan="urgent",
            ruleset="standard-support@2.0.0+abc123",
            priority="P1",
            due_at=datetime.fromisoformat("2026-11-23T13:00:00+08:00"),
        )
        plugin.slaengine_escalate(context=context, action=action)
        if fresh:  # the former behaviour: a client per delivery
            plugin._client.close()
            plugin._client = None
    return (time.perf_counter() - t0) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    plugin = WebhookNotifier()
    plugin.slaengine_configure(
        {"url": f"http://127.0.0.1:{server.server_address[1]}/hook", "secret": "s3cret"}
    )
    run(plugin, 50, fresh=False)  # warm
    kept, fresh = [], []
    for _ in range(args.repeats):  # interleaved: the machine is shared
        kept.append(run(plugin, args.deliveries, fresh=False))
        fresh.append(run(plugin, args.deliveries, fresh=True))
    k, f = statistics.median(kept), statistics.median(fresh)
    print(f"one kept-alive client:      {k * 1000:.2f} ms per delivery ({1 / k:,.0f}/s)")
    print(f"a new client per delivery:  {f * 1000:.2f} ms per delivery ({1 / f:,.0f}/s)")
    print(f"ratio: {f / k:.1f}x (median of {args.repeats} interleaved repeats)")
    server.shutdown()


if __name__ == "__main__":
    main()
