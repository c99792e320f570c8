// @ts-check
/** The signaling service's REST API (docs/signaling.md, "REST"). */

/** @typedef {{room: string, owner_token: string, expires_at: number, one_time: boolean, max_receivers: number, ws_url: string}} CreatedRoom */
/** @typedef {{room: string, expires_at: number, one_time: boolean, locked: boolean, max_receivers: number, receivers: number, full: boolean, sender_online: boolean}} RoomState */

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** @param {Response} response */
async function failure(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    // not JSON: keep the status
  }
  const { code = "http_error", message = `HTTP ${response.status}` } = /** @type {any} */ (body);
  return new ApiError(response.status, code, message);
}

/**
 * POST /rooms. A text/plain body needs no CORS preflight.
 * @param {string} apiUrl
 * @param {{expires_in?: number, one_time?: boolean, max_receivers?: number}} options
 * @returns {Promise<CreatedRoom>}
 */
export async function createRoom(apiUrl, options) {
  const response = await fetch(`${apiUrl}/rooms`, {
    method: "POST",
    headers: { "Content-Type": "text/plain" },
    body: JSON.stringify(options),
  });
  if (response.status !== 201) throw await failure(response);
  return response.json();
}

/**
 * GET /rooms/{room}: null when unknown or expired (the same answer).
 * @param {string} apiUrl
 * @param {string} room
 * @returns {Promise<RoomState | null>}
 */
export async function getRoom(apiUrl, room) {
  const response = await fetch(`${apiUrl}/rooms/${encodeURIComponent(room)}`, { cache: "no-store" });
  if (response.status === 404) return null;
  if (!response.ok) throw await failure(response);
  return response.json();
}

/**
 * DELETE /rooms/{room} with the owner token: everyone is told the room closed.
 * @param {string} apiUrl
 * @param {string} room
 * @param {string} ownerToken
 */
export async function deleteRoom(apiUrl, room, ownerToken) {
  const response = await fetch(`${apiUrl}/rooms/${encodeURIComponent(room)}`, {
    method: "DELETE",
    headers: { Authorization: `Bearer ${ownerToken}` },
  });
  if (response.status !== 204 && response.status !== 404) throw await failure(response);
}
