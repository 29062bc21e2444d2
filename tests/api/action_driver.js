#!/usr/bin/env node
/**
 * Run the real Auth0 Action (`auth0/actions/post-login.js`, `onExecutePostLogin`) once, the way
 * a tenant runs it after an interactive login, and print what it did as JSON.
 *
 *   echo '{"token": "...", "user": {...}, "webhook_url": "http://127.0.0.1:PORT/v1/webhooks/auth0",
 *          "webhook_secret": "whsec_...", "logins_count": 1}' | node tests/api/action_driver.js
 *
 * prints {"idToken": {claim: value}, "accessToken": {...}, "denied": [reasons], "logs": [lines],
 * "threw": null | "message"}. The Action's console.log lines are captured into `logs` so stdout
 * carries the JSON only. Optional input: `connection` ({name, strategy}), `claim_namespace`.
 */
const path = require("node:path");
const util = require("node:util");

const ACTION = path.join(__dirname, "..", "..", "auth0", "actions", "post-login.js");

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on("data", (chunk) => chunks.push(chunk));
    process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    process.stdin.on("error", reject);
  });
}

/** The post-login event Auth0 builds for a universal-login sign-in that carried the link. */
function buildEvent(input) {
  const secrets = {
    INVITES_WEBHOOK_URL: input.webhook_url,
    INVITES_WEBHOOK_SECRET: input.webhook_secret,
  };
  if (input.claim_namespace) secrets.INVITES_CLAIM_NAMESPACE = input.claim_namespace;
  return {
    client: { client_id: "funnel-app", name: "Customer space", metadata: {} },
    connection: {
      id: "con_interop",
      ...(input.connection || { name: "Username-Password-Authentication", strategy: "auth0" }),
    },
    request: {
      ip: "127.0.0.1",
      method: "GET",
      hostname: "tenant.example.auth0.com",
      query: {
        client_id: "funnel-app",
        response_type: "code",
        scope: "openid profile email",
        invitation: input.token,
        login_hint: input.user.email,
        screen_hint: "signup",
      },
      body: {},
      geoip: {},
    },
    secrets,
    stats: { logins_count: input.logins_count ?? 1 },
    tenant: { id: "interop" },
    transaction: {
      id: "tx_interop",
      protocol: "oidc-basic-profile",
      prompt: [],
      requested_scopes: ["openid", "profile", "email"],
      locale: "en",
    },
    user: { app_metadata: {}, user_metadata: {}, identities: [], ...input.user },
  };
}

/** An `api` stub that records the calls the Action makes. */
function recordingApi() {
  const calls = { idToken: {}, accessToken: {}, denied: [] };
  const api = {
    idToken: { setCustomClaim: (name, value) => { calls.idToken[name] = value; } },
    accessToken: { setCustomClaim: (name, value) => { calls.accessToken[name] = value; } },
    access: { deny: (reason) => { calls.denied.push(reason); } },
  };
  return { api, calls };
}

async function main() {
  const input = JSON.parse(await readStdin());
  const logs = [];
  console.log = (...args) => logs.push(util.format(...args));

  const { onExecutePostLogin } = require(ACTION);
  const { api, calls } = recordingApi();
  let threw = null;
  try {
    await onExecutePostLogin(buildEvent(input), api);
  } catch (err) {
    threw = String((err && err.message) || err);
  }
  // Exit once the answer is out: idle keep-alive sockets must not hold the process open.
  process.stdout.write(`${JSON.stringify({ ...calls, logs, threw })}\n`, () => process.exit(0));
}

main().catch((err) => {
  process.stderr.write(`action_driver.js: ${(err && err.stack) || err}\n`);
  process.exit(2);
});
