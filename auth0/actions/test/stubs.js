/**
 * Test doubles for the Action: an Auth0-shaped `event`/`api` pair (scripts/runtime.js), a real
 * local HTTP server playing the invites webhook, and a console capture.
 */
const http = require("node:http");
const { Webhook } = require("standardwebhooks");
const { loginEvent, recordingApi, redirectConsole } = require("../scripts/runtime");

// A test secret built from a readable phrase (the same as the public dev secret).
const SECRET = "whsec_" + Buffer.from("invites-dev-webhook-secret-0001!").toString("base64");
const TOKEN = "v1.k1.inv_01HZX7Q3J4C5B6N7M8P9R0S1T2.1.Zm9vYmFyYmF6cXV4cXV1eA";
const NS = "https://invites.dev/";
const USER = { user_id: "auth0|u1", email: "ada@example.com", email_verified: false, name: "Ada Lovelace" };

/** Ada's login with the link's TOKEN; `overrides` as `loginEvent` takes them. */
function makeEvent(overrides = {}) {
  return loginEvent({ invitation: TOKEN, ...overrides, user: { ...USER, ...overrides.user } });
}

/** An `api` that records what the Action did: `{ api, calls }`. */
const makeApi = recordingApi;

/**
 * A webhook receiver on 127.0.0.1 that verifies every request's Standard Webhooks signature
 * and answers from a script: one entry per request, each `{status, json}` or `"hang"` (never
 * answer). Once the script runs out the last entry repeats. A request the client gives up on
 * before its answer is marked `abandoned`.
 */
async function startWebhookServer(script, { secret = SECRET } = {}) {
  const requests = [];
  const verifier = new Webhook(secret);
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const record = { method: req.method, url: req.url, headers: req.headers, raw, abandoned: false };
      res.on("close", () => {
        record.abandoned = !res.writableEnded;
      });
      try {
        record.payload = verifier.verify(raw, req.headers);
        record.verified = true;
      } catch (err) {
        record.verified = false;
        record.verifyError = err.message;
      }
      requests.push(record);
      const step = script[Math.min(requests.length - 1, script.length - 1)];
      if (!record.verified) return reply(res, 401, { error: { code: "bad_signature" } });
      if (step === "hang") return undefined;
      return reply(res, step.status, step.json);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/v1/webhooks/auth0`,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function reply(res, status, json) {
  const body = json === undefined ? "" : JSON.stringify(json);
  res.writeHead(status, { "content-type": "application/json" });
  res.end(body);
}

/** Collect everything written through console.* while `fn` runs. */
async function captureConsole(fn) {
  const lines = [];
  const restore = redirectConsole(lines);
  try {
    const result = await fn();
    return { result, lines };
  } finally {
    restore();
  }
}

module.exports = {
  NS,
  SECRET,
  TOKEN,
  captureConsole,
  makeApi,
  makeEvent,
  startWebhookServer,
};
