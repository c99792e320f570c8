// @ts-check
/**
 * The signaling WebSocket (docs/signaling.md): hello/welcome, relayed signals, a heartbeat
 * well inside API Gateway's 10-minute idle timeout, and transparent reconnection (the
 * 2-hour connection limit, network changes, server restarts) with the same peer id.
 */

import { TIMING } from "./timing.js";

// Refusals a receiving page explains to its user (docs/signaling.md).
/** Unknown or expired room. */
export const ROOM_NOT_FOUND = "room_not_found";
/** A one-time link already used by someone else. */
export const ROOM_LOCKED = "room_locked";
/** As many receivers as the room allows are connected. */
export const ROOM_FULL = "room_full";
/** Another tab or window of ours took over this peer id. */
export const CONNECTION_REPLACED = "connection_replaced";

/**
 * @typedef {{peer: string, role: "sender" | "receiver"}} PeerInfo
 * @typedef {{type: "welcome", room: string, peer: string, role: string, expires_at: number,
 *            ice_servers: RTCIceServer[], peers: PeerInfo[]}} Welcome
 * @typedef {"connecting" | "open" | "reconnecting" | "closed"} SignalingState
 */

/**
 * Events: "welcome" (detail: Welcome), "peer-joined" (PeerInfo), "peer-left" ({peer}),
 * "signal" ({from, data}), "room-closed", "server-error" ({code, message}),
 * "state" (SignalingState), "refused" (the handshake failed; the caller explains why).
 */
export class SignalingClient extends EventTarget {
  /**
   * @param {{wsUrl: string, room: string, role: "sender" | "receiver", token: string,
   *          peer?: string | null, heartbeatMs?: number}} options
   */
  constructor({ wsUrl, room, role, token, peer = null, heartbeatMs = TIMING.heartbeatMs }) {
    super();
    this.wsUrl = wsUrl;
    this.room = room;
    this.role = role;
    this.token = token;
    /** Our peer id, from the first welcome; reconnects ask for it again. */
    this.peer = peer;
    this.heartbeatMs = heartbeatMs;
    /** @type {WebSocket | null} */
    this.socket = null;
    /** @type {SignalingState} */
    this.state = "connecting";
    /** @type {Welcome | null} */
    this.welcome = null;
    this.attempt = 0;
    this.stopped = false;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.heartbeat = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.retryTimer = undefined;
    this.onOnline = () => {
      if (this.state === "reconnecting") this.reconnectNow();
    };
    window.addEventListener("online", this.onOnline);
  }

  connect() {
    const query = new URLSearchParams({ room: this.room, role: this.role });
    if (this.role === "receiver" && this.peer) query.set("peer", this.peer);
    query.set("token", this.token);
    const socket = new WebSocket(`${this.wsUrl}?${query}`);
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      this.attempt = 0;
      socket.send(JSON.stringify({ type: "hello" }));
      clearInterval(this.heartbeat);
      this.heartbeat = setInterval(() => this.sendRaw({ type: "ping" }), this.heartbeatMs);
    };
    socket.onmessage = (event) => this.handle(event.data);
    socket.onclose = () => {
      clearInterval(this.heartbeat);
      if (this.socket !== socket || this.stopped) return;
      this.socket = null;
      if (!opened) this.emit("refused", null);
      this.scheduleReconnect();
    };
  }

  /** @param {string} text */
  handle(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    switch (message.type) {
      case "welcome":
        this.welcome = message;
        this.peer = message.peer;
        this.setState("open");
        this.emit("welcome", message);
        break;
      case "peer-joined":
      case "peer-left":
      case "signal":
        this.emit(message.type, message);
        break;
      case "room-closed":
        this.stop();
        this.emit("room-closed", message);
        break;
      case "error":
        if (message.code === CONNECTION_REPLACED) {
          // Another tab or a newer connection of ours took over this peer id.
          this.stop();
        }
        this.emit("server-error", message);
        break;
      default:
        break; // pong, locked
    }
  }

  scheduleReconnect() {
    if (this.stopped) return;
    this.setState("reconnecting");
    const delay = Math.min(TIMING.maxBackoffMs, 500 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
    this.attempt += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    clearTimeout(this.retryTimer);
    if (!this.stopped && !this.socket) this.connect();
  }

  /** @param {SignalingState} state */
  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", state);
  }

  /**
   * @param {string} type
   * @param {unknown} detail
   */
  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** @param {object} message */
  sendRaw(message) {
    if (this.socket?.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  /**
   * Relay `data` to one peer. Returns false when not connected (the caller retries on
   * the next welcome / peer-joined).
   * @param {string} to
   * @param {object} data
   */
  signal(to, data) {
    return this.sendRaw({ type: "signal", to, data });
  }

  /** Sender only: no new receivers from now on (one-time link used). */
  lock() {
    return this.sendRaw({ type: "lock" });
  }

  /** Stop for good: no reconnects. */
  stop() {
    this.stopped = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.retryTimer);
    window.removeEventListener("online", this.onOnline);
    this.setState("closed");
    const socket = this.socket;
    this.socket = null;
    socket?.close();
  }
}
