"""Webhooks: validated, listed without their secret, delivered by the scheduler from the outbox
with an HMAC-SHA256 signature, and retried with back-off when the receiver fails."""
import hashlib
import hmac
import http.server
import json
import socket
import threading
import time

from conftest import RUN
from test_servers import SETTINGS


class Receiver:
    """A loopback HTTP receiver: records every POST; answers the statuses in `answers`, then 200."""

    def __init__(self, answers=()):
        self.received = []
        answers = list(answers)
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((dict(self.headers), body, time.time()))
                status = answers.pop(0) if answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


class Hanging:
    """A loopback receiver that accepts and reads requests but never answers: a dead hook's URL.
    `accepted` counts connections, `closed` those the sender gave up on."""

    def __init__(self):
        self.accepted, self.closed, self.conns = 0, 0, []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            self.accepted += 1
            threading.Thread(target=self.hold, args=(conn,), daemon=True).start()

    def hold(self, conn):
        try:
            while conn.recv(4096):
                pass
        except OSError:
            pass
        self.closed += 1

    def close(self):
        self.sock.close()
        for conn in self.conns:
            conn.close()


def wait_for(predicate, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_webhook_validation_and_listing(stack):
    for body in [{}, {"url": "ftp://127.0.0.1/"}, {"url": "http://example.com/x"}, {"url": "https://u:p@example.com/"},
                 {"url": "https://example.com/" + "a" * 3000}, {"url": "https://example.com/", "events": ["boom"]},
                 {"url": "https://example.com/", "events": "crashed"}, {"url": "https://example.com/", "server": "../etc"},
                 {"url": 5}, {"url": "https://example.com/\u0000"}]:
        r = stack.request("POST", "/api/v1/webhooks", json=body)
        assert r.status_code == 400 and r.json()["status"] == "error", (body, r.text)
    assert stack.request("POST", "/api/v1/webhooks", json={"url": "https://example.com/", "server": f"peontest.{RUN}none"}).status_code == 404
    assert stack.request("POST", "/api/v1/webhooks", data="[", headers={"Content-Type": "application/json"}).status_code == 400
    r = stack.request("POST", "/api/v1/webhooks", json={"url": "https://discord.com/api/webhooks/1/x", "events": ["crashed"]})
    assert r.status_code == 201 and r.json()["secret"].startswith("whsec_")
    hook = r.json()["id"]
    listed = [h for h in stack.request("GET", "/api/v1/webhooks").json() if h["id"] == hook]
    assert listed and "secret" not in listed[0] and listed[0]["events"] == ["crashed"] and listed[0]["last_delivery"] is None
    assert stack.request("GET", f"/api/v1/webhooks/{hook}/deliveries").json() == []
    for bad in ("wh_nope", "..", "wh_0123456789ab"):
        assert stack.request("GET", f"/api/v1/webhooks/{bad}/deliveries").status_code == 404
    assert stack.request("DELETE", f"/api/v1/webhooks/{hook}").status_code == 200
    assert stack.request("DELETE", f"/api/v1/webhooks/{hook}").status_code == 404


def test_crash_is_delivered_signed_and_a_failure_is_retried(stack):
    # A few senders, one delivery per hook in flight: hooks other tests left on this shared stack
    # (schemathesis makes some, to hosts that never answer) could take every sender for a while.
    for hook in stack.request("GET", "/api/v1/webhooks").json():
        stack.request("DELETE", f"/api/v1/webhooks/{hook['id']}")
    receiver = Receiver(answers=[500])
    uid = f"peontest.{RUN}wh"
    try:
        r = stack.request("POST", "/api/v1/webhooks", json={"url": receiver.url, "events": ["crashed", "created"], "server": None})
        assert r.status_code == 201, r.text
        hook, secret = r.json()["id"], r.json()["secret"]
        body = {**SETTINGS, "MODE": "crash", "CRASH_AFTER": "1", "crash_policy": {"enabled": False}}
        assert stack.request("PUT", f"/api/v1/server/create/{uid}", json=body).status_code == 200
        # created: first answered 500, then retried after the first back-off step (1 s, in whole seconds) and delivered.
        # A retry does not hold back the hook's later events, so `crashed` may come before the retry.
        def both():
            kinds = [json.loads(b)["event"] for _, b, _ in receiver.received]
            return "crashed" in kinds and kinds.count("created") >= 2

        assert wait_for(both, 20), receiver.received
        events = [json.loads(b) for _, b, _ in receiver.received]
        created = [(h, t) for (h, b, t) in receiver.received if json.loads(b)["event"] == "created"]
        assert len(created) >= 2 and 0 < created[1][1] - created[0][1] < 3, events
        for headers, raw, _ in receiver.received:
            expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
            assert headers["X-Peon-Signature"] == f"sha256={expected}"
            assert abs(int(headers["X-Peon-Timestamp"]) - time.time()) < 60
        crashed = [e for e in events if e["event"] == "crashed"][0]
        assert crashed["server"] == uid and crashed["detail"]["exit_code"] == 3
        deliveries = stack.request("GET", f"/api/v1/webhooks/{hook}/deliveries").json()
        first_created = [d for d in deliveries if d["event"] == "created"][0]
        assert first_created["state"] == "delivered" and first_created["attempts"] == 2 and first_created["last_status"] == 200
        listed = [h for h in stack.request("GET", "/api/v1/webhooks").json() if h["id"] == hook][0]
        assert listed["last_delivery"]["state"] == "delivered"
        assert stack.request("DELETE", f"/api/v1/webhooks/{hook}").status_code == 200
    finally:
        stack.request("DELETE", f"/api/v1/server/eradicate/{uid}")
        receiver.close()


def test_a_hanging_receiver_does_not_hold_other_hooks(stack):
    for hook in stack.request("GET", "/api/v1/webhooks").json():
        stack.request("DELETE", f"/api/v1/webhooks/{hook['id']}")
    dead, live = Hanging(), Receiver()
    uid = f"peontest.{RUN}whhang"
    hooks = []
    try:
        # The dead hook first: its delivery is the older one, which a single sender would send first.
        for url in (dead.url, live.url):
            r = stack.request("POST", "/api/v1/webhooks", json={"url": url, "events": ["created"]})
            assert r.status_code == 201, r.text
            hooks.append(r.json()["id"])
        assert stack.request("PUT", f"/api/v1/server/create/{uid}", json={**SETTINGS, "start_later": True}).status_code == 200
        assert wait_for(lambda: dead.accepted >= 1 and any(json.loads(b)["event"] == "created" for _, b, _ in live.received), 30), \
            (dead.accepted, live.received)
        # The working hook got its event while the dead one's request was still hanging, unanswered
        # and not yet given up on (one attempt in flight, none recorded).
        assert dead.closed == 0
        pending = [d for d in stack.request("GET", f"/api/v1/webhooks/{hooks[0]}/deliveries").json() if d["event"] == "created"]
        assert len(pending) == 1 and pending[0]["state"] == "pending" and pending[0]["attempts"] == 0, pending
        delivered = [d for d in stack.request("GET", f"/api/v1/webhooks/{hooks[1]}/deliveries").json() if d["event"] == "created"]
        assert wait_for(lambda: [d["state"] for d in stack.request("GET", f"/api/v1/webhooks/{hooks[1]}/deliveries").json()
                                 if d["event"] == "created"] == ["delivered"], 10), delivered
        # The dead hook's attempt ends at its timeout and is retried later, as before.
        assert wait_for(lambda: dead.closed >= 1, 30)
        assert wait_for(lambda: [d["attempts"] for d in stack.request("GET", f"/api/v1/webhooks/{hooks[0]}/deliveries").json()
                                 if d["event"] == "created"][0] >= 1, 10)
    finally:
        for hook in hooks:
            stack.request("DELETE", f"/api/v1/webhooks/{hook}")
        stack.request("DELETE", f"/api/v1/server/eradicate/{uid}")
        dead.close()
        live.close()


def test_internal_targets_are_refused_at_delivery_and_nothing_is_sent(make_stack):
    """Without PEON_WEBHOOK_ALLOW, loopback, private and link-local targets get nothing, and the
    delivery's error says why without a connection attempt (no port-scanning through /deliveries).
    A name that only starts like loopback is no loopback: refused when the hook is made."""
    s = make_stack(env={"PEON_WEBHOOK_ALLOW": ""})
    receiver = Receiver()
    uid = f"peontest.{RUN}whx"
    try:
        assert s.request("POST", "/api/v1/webhooks", json={"url": "http://127.x.10.0.0.5.nip.io/hook"}).status_code == 400
        hooks = [s.request("POST", "/api/v1/webhooks", json={"url": url, "events": ["created"]}).json()["id"]
                 for url in (receiver.url, receiver.url.replace("127.0.0.1", "localhost"), "https://10.255.255.1:9/x",
                             "https://169.254.169.254/latest/meta-data/")]
        assert s.request("PUT", f"/api/v1/server/create/{uid}", json={**SETTINGS, "start_later": True}).status_code == 200

        def refused(hook):
            return [d for d in s.request("GET", f"/api/v1/webhooks/{hook}/deliveries").json()
                    if d["attempts"] >= 1 and "PEON_WEBHOOK_ALLOW" in (d["last_error"] or "")]

        assert wait_for(lambda: all(refused(h) for h in hooks), 20), [s.request("GET", f"/api/v1/webhooks/{h}/deliveries").json()
                                                                      for h in hooks]
        assert receiver.received == []
    finally:
        s.request("DELETE", f"/api/v1/server/eradicate/{uid}")
        receiver.close()
