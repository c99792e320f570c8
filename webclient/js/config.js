// @ts-check
/** Where the API and the WebSocket live: GET /config.json (docs/signaling.md, "Discovery"). */

/** @typedef {{apiUrl: string, wsUrl: string}} Config */

/** @type {Promise<Config> | null} */
let cached = null;

/** @returns {Promise<Config>} */
export function loadConfig() {
  cached ??= fetch(new URL("config.json", document.baseURI), { cache: "no-store" }).then(async (response) => {
    if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
    const body = await response.json();
    return { apiUrl: String(body.api_url).replace(/\/$/, ""), wsUrl: String(body.ws_url) };
  });
  return cached;
}
