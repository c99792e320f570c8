"""Signaling load: Locust users that behave like a sender and a receiver.

Each user creates a room over REST, joins it over WebSocket as the sender and as a
receiver, exchanges an offer and an answer of real SDP size plus a few ICE-sized
signals, pings, and leaves. Every WebSocket round trip is reported as a Locust
request (type ``WS``), so failures and percentiles show in Locust's UI and CSV.

    locust -f loadtests/locustfile.py --headless -u 100 -r 50 -t 20s --host http://127.0.0.1:8000

``--host`` is the site (it serves /config.json), local or deployed.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import websocket
from locust import HttpUser, between, events, task

# A Chromium offer with its candidates is 2-4 KB; an aiortc one about 1.5 KB.
OFFER_SDP = "v=0\r\n" + "a=candidate:" + "x" * 3000
ANSWER_SDP = "v=0\r\n" + "a=candidate:" + "y" * 2000
ICE = {"candidate": "candidate:1 1 udp 2130706431 192.0.2.1 50000 typ host", "sdpMid": "0"}
TIMEOUT = 10
HOLD_SECONDS = float(os.environ.get("PEERBEAM_LOAD_HOLD", "2"))


class SignalingSocket:
    """One WebSocket member of a room, timing each exchange as a Locust request."""

    def __init__(self, user: PeerPair, url: str) -> None:
        self.user = user
        self.socket = websocket.create_connection(url, timeout=TIMEOUT)

    def send(self, message: dict[str, Any]) -> None:
        self.socket.send(json.dumps(message))

    def receive(self, kind: str) -> dict[str, Any]:
        while True:
            message = json.loads(self.socket.recv())
            if message.get("type") == kind:
                return message
            if message.get("type") == "error":
                raise RuntimeError(f"{message['code']}: {message['message']}")

    def round_trip(self, name: str, message: dict[str, Any], expect: str,
                   on: SignalingSocket | None = None) -> dict[str, Any]:
        """Send `message`, wait for `expect` (on another socket if given); report it."""
        started = time.perf_counter()
        payload = json.dumps(message)
        try:
            self.socket.send(payload)
            answer = (on or self).receive(expect)
        except Exception as error:  # noqa: BLE001 - every failure is a Locust failure
            self.user.report(name, started, len(payload), error)
            raise
        self.user.report(name, started, len(payload), None)
        return answer

    def close(self) -> None:
        self.socket.close()


class PeerPair(HttpUser):
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        config = self.client.get("/config.json", name="/config.json").json()
        self.api_url = config["api_url"]
        self.ws_url = config["ws_url"]

    def report(self, name: str, started: float, length: int, error: Exception | None) -> None:
        events.request.fire(
            request_type="WS", name=name, response_time=(time.perf_counter() - started) * 1000,
            response_length=length, exception=error, context={},
        )

    def join(self, name: str, **query: str) -> tuple[SignalingSocket, dict[str, Any]]:
        started = time.perf_counter()
        try:
            member = SignalingSocket(self, f"{self.ws_url}?{urlencode(query)}")
        except Exception as error:  # noqa: BLE001
            self.report(name, started, 0, error)
            raise
        welcome = member.round_trip(name, {"type": "hello"}, "welcome")
        return member, welcome

    @task
    def transfer_setup(self) -> None:
        with self.client.post(f"{self.api_url}/rooms", json={"expires_in": 600},
                              name="POST /rooms", catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"HTTP {response.status_code}")
                return
            room = response.json()
        sender, _ = self.join("join sender", room=room["room"], role="sender",
                              token=room["owner_token"])
        receiver, welcome = self.join("join receiver", room=room["room"], role="receiver",
                                      token=secrets.token_urlsafe(24))
        try:
            sender_id = welcome["peers"][0]["peer"]
            joined = sender.receive("peer-joined")
            receiver_id = joined["peer"]
            sender.round_trip("signal offer", {"type": "signal", "to": receiver_id, "data": {
                "kind": "offer", "session": "s1", "sdp": OFFER_SDP}}, "signal", on=receiver)
            receiver.round_trip("signal answer", {"type": "signal", "to": sender_id, "data": {
                "kind": "answer", "session": "s1", "sdp": ANSWER_SDP}}, "signal", on=sender)
            for _ in range(3):
                receiver.round_trip("signal ice", {"type": "signal", "to": sender_id,
                                                   "data": ICE}, "signal", on=sender)
            # Peers stay connected while their transfer runs: hold the sockets a while,
            # pinging as real clients do, so the server carries concurrent members.
            time.sleep(HOLD_SECONDS)
            sender.round_trip("ping", {"type": "ping"}, "pong")
            receiver.round_trip("ping", {"type": "ping"}, "pong")
            receiver.close()
            sender.receive("peer-left")
        finally:
            receiver.close()  # idempotent: also after a failure above
            sender.close()
        self.client.delete(f"{self.api_url}/rooms/{room['room']}", name="DELETE /rooms/{id}",
                           headers={"Authorization": f"Bearer {room['owner_token']}"})
