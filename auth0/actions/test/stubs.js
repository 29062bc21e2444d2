/**
 * Test doubles for the Action: an Auth0-shaped `event`/`api` pair, a real local HTTP server
 * playing the invites webhook, and a console capture.
 */
const http = require("node:http");
const util = require("node:util");
const { Webhook } = require("standardwebhooks");

// A test secret built from a readable phrase (the same as the public dev secret).
const SECRET = "whsec_" + Buffer.from("invites-dev-webhook-secret-0001!").toString("base64");
const TOKEN = "v1.k1.inv_01HZX7Q3J4C5B6N7M8P9R0S1T2.1.Zm9vYmFyYmF6cXV4cXV1eA";
const NS = "https://invites.dev/";

/**
 * A post-login event for an interactive universal-login sign-in that carries `invitation`.
 * `overrides` are merged one level deep (request, transaction, user, ... are merged, not
 * replaced); `secrets` is taken as given, so a test states exactly which secrets exist.
 */
function makeEvent(overrides = {}) {
  const base = {
    client: { client_id: "client_123", name: "Customer space", metadata: {} },
    connection: { id: "con_1", name: "Username-Password-Authentication", strategy: "auth0" },
    request: {
      ip: "127.0.0.1",
      method: "GET",
      hostname: "tenant.example.auth0.com",
      query: {
        client_id: "client_123",
        response_type: "code",
        scope: "openid profile email",
        invitation: TOKEN,
        screen_hint: "signup",
      },
      body: {},
      geoip: {},
    },
    secrets: {},
    stats: { logins_count: 1 },
    tenant: { id: "tenant" },
    transaction: {
      id: "tx_1",
      protocol: "oidc-basic-profile",
      prompt: [],
      requested_scopes: ["openid", "profile", "email"],
      locale: "en",
    },
    user: {
      user_id: "auth0|u1",
      email: "ada@example.com",
      email_verified: false,
      name: "Ada Lovelace",
      app_metadata: {},
      user_metadata: {},
      identities: [],
    },
  };
  const event = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    const isObject = value && typeof value === "object" && !Array.isArray(value);
    event[key] = isObject && base[key] && key !== "secrets" ? { ...base[key], ...value } : value;
  }
  return event;
}

/** An `api` that records what the Action did. */
function makeApi() {
  const calls = { idToken: {}, accessToken: {}, denied: [] };
  const api = {
    idToken: { setCustomClaim: (name, value) => { calls.idToken[name] = value; } },
    accessToken: { setCustomClaim: (name, value) => { calls.accessToken[name] = value; } },
    access: { deny: (reason) => { calls.denied.push(reason); } },
  };
  return { api, calls };
}

/**
 * A webhook receiver on 127.0.0.1 that verifies every request's Standard Webhooks signature
 * and answers from a script: one entry per request, each `{status, json}` or `"hang"` (never
 * answer). Once the script runs out the last entry repeats.
 */
async function startWebhookServer(script, { secret = SECRET } = {}) {
  const requests = [];
  const verifier = new Webhook(secret);
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const record = { method: req.method, url: req.url, headers: req.headers, raw };
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
  const methods = ["log", "info", "warn", "error", "debug", "trace"];
  const saved = methods.map((name) => console[name]);
  for (const name of methods) {
    console[name] = (...args) => { lines.push(util.format(...args)); };
  }
  try {
    const result = await fn();
    return { result, lines };
  } finally {
    methods.forEach((name, i) => { console[name] = saved[i]; });
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
