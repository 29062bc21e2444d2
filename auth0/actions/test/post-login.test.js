const { afterEach, beforeEach, test } = require("node:test");
const assert = require("node:assert/strict");

const action = require("../post-login");
const { NS, SECRET, TOKEN, captureConsole, makeApi, makeEvent, startWebhookServer } = require("./stubs");

const { handle } = action._internal;
// Short timings so the retry and timeout cases run in well under a second.
const FAST = { timeoutMs: 250, retryDelayMs: 10 };

// The Action logs every outcome; keep that out of the test report (tests that inspect the
// log capture it themselves).
const realLog = console.log;
beforeEach(() => { console.log = () => {}; });
afterEach(() => { console.log = realLog; });

const ACCEPTED = {
  status: 200,
  json: { result: "accepted", invitation_id: "inv_01HZX7Q3J4C5B6N7M8P9R0S1T2", roles: ["customer", "member"], grant: "done" },
};

function secretsFor(server, extra = {}) {
  return { INVITES_WEBHOOK_URL: server.url, INVITES_WEBHOOK_SECRET: SECRET, ...extra };
}

async function withServer(script, fn) {
  const server = await startWebhookServer(script);
  try {
    return await fn(server);
  } finally {
    await server.close();
  }
}

function assertOnlyErrorClaim(calls, reason) {
  assert.deepEqual(calls.idToken, { [`${NS}invitation_error`]: reason });
  assert.deepEqual(calls.accessToken, { [`${NS}invitation_error`]: reason });
  assert.deepEqual(calls.denied, []);
}

test("accepted redemption sets the granted roles on both tokens", async () => {
  await withServer([ACCEPTED], async (server) => {
    const { api, calls } = makeApi();
    await action.onExecutePostLogin(makeEvent({ secrets: secretsFor(server) }), api);

    assert.equal(server.requests.length, 1);
    const [request] = server.requests;
    assert.equal(request.verified, true, request.verifyError);
    assert.equal(request.method, "POST");
    assert.equal(request.url, "/v1/webhooks/auth0");
    assert.equal(request.headers["content-type"], "application/json");
    assert.match(request.headers["webhook-id"], /^msg_[0-9a-f]{32}$/);
    assert.match(request.headers["webhook-timestamp"], /^\d+$/);
    assert.match(request.headers["webhook-signature"], /^v1,[A-Za-z0-9+/]+=*$/);
    assert.deepEqual(request.payload, {
      type: "invitation.redeem",
      invitation: TOKEN,
      user: { user_id: "auth0|u1", email: "ada@example.com", email_verified: false, name: "Ada Lovelace" },
      connection: { name: "Username-Password-Authentication", strategy: "auth0" },
      is_new_user: true,
    });

    assert.deepEqual(calls.idToken, { [`${NS}roles`]: ["customer", "member"] });
    assert.deepEqual(calls.accessToken, { [`${NS}roles`]: ["customer", "member"] });
    assert.deepEqual(calls.denied, []);
  });
});

test("returning user with a social connection is reported as not new", async () => {
  await withServer([ACCEPTED], async (server) => {
    const { api } = makeApi();
    const event = makeEvent({
      secrets: secretsFor(server),
      stats: { logins_count: 7 },
      connection: { id: "con_g", name: "google-oauth2", strategy: "google-oauth2" },
      user: { user_id: "google-oauth2|123", email: "ada@example.com", email_verified: true, name: "Ada" },
    });
    await action.onExecutePostLogin(event, api);

    const { payload } = server.requests[0];
    assert.equal(payload.is_new_user, false);
    assert.deepEqual(payload.connection, { name: "google-oauth2", strategy: "google-oauth2" });
    assert.equal(payload.user.email_verified, true);
  });
});

test("claim namespace comes from INVITES_CLAIM_NAMESPACE, with a trailing slash added", async () => {
  await withServer([ACCEPTED], async (server) => {
    const { api, calls } = makeApi();
    const secrets = secretsFor(server, { INVITES_CLAIM_NAMESPACE: "https://example.com/claims" });
    await action.onExecutePostLogin(makeEvent({ secrets }), api);
    assert.deepEqual(calls.idToken, { "https://example.com/claims/roles": ["customer", "member"] });
    assert.deepEqual(calls.accessToken, { "https://example.com/claims/roles": ["customer", "member"] });
  });
});

test("409 email_mismatch sets the reason and does not deny the login", async () => {
  await withServer([{ status: 409, json: { result: "rejected", reason: "email_mismatch" } }], async (server) => {
    const { api, calls } = makeApi();
    await action.onExecutePostLogin(makeEvent({ secrets: secretsFor(server) }), api);
    assert.equal(server.requests.length, 1);
    assertOnlyErrorClaim(calls, "email_mismatch");
  });
});

test("410 expired sets the reason without a retry", async () => {
  await withServer([{ status: 410, json: { result: "rejected", reason: "expired" } }], async (server) => {
    const { api, calls } = makeApi();
    await action.onExecutePostLogin(makeEvent({ secrets: secretsFor(server) }), api);
    assert.equal(server.requests.length, 1);
    assertOnlyErrorClaim(calls, "expired");
  });
});

test("404 forged token is reported as invalid_link", async () => {
  await withServer([{ status: 404, json: { error: { code: "not_found", message: "Unknown invitation." } } }], async (server) => {
    const { api, calls } = makeApi();
    await action.onExecutePostLogin(makeEvent({ secrets: secretsFor(server) }), api);
    assert.equal(server.requests.length, 1);
    assertOnlyErrorClaim(calls, "invalid_link");
  });
});

test("a 500 is retried once with the same webhook-id and the second answer wins", async () => {
  await withServer([{ status: 500, json: { error: { code: "internal" } } }, ACCEPTED], async (server) => {
    const { api, calls } = makeApi();
    await handle(makeEvent({ secrets: secretsFor(server) }), api, FAST);

    assert.equal(server.requests.length, 2);
    const [first, second] = server.requests;
    assert.equal(first.verified && second.verified, true);
    assert.equal(second.headers["webhook-id"], first.headers["webhook-id"]);
    assert.equal(second.raw, first.raw);
    assert.deepEqual(calls.idToken, { [`${NS}roles`]: ["customer", "member"] });
    assert.deepEqual(calls.accessToken, { [`${NS}roles`]: ["customer", "member"] });
  });
});

test("a 429 is retried once too", async () => {
  await withServer([{ status: 429, json: { error: { code: "rate_limited" } } }, ACCEPTED], async (server) => {
    const { api, calls } = makeApi();
    await handle(makeEvent({ secrets: secretsFor(server) }), api, FAST);
    assert.equal(server.requests.length, 2);
    assert.deepEqual(calls.idToken, { [`${NS}roles`]: ["customer", "member"] });
  });
});

test("two 500s give up with unavailable after exactly one retry, without throwing", async () => {
  await withServer([{ status: 500, json: {} }, { status: 503, json: {} }, ACCEPTED], async (server) => {
    const { api, calls } = makeApi();
    await handle(makeEvent({ secrets: secretsFor(server) }), api, FAST);
    assert.equal(server.requests.length, 2);
    assertOnlyErrorClaim(calls, "unavailable");
  });
});

// The test's own timeout only keeps a broken Action from hanging the run.
test("a server that never answers times out twice and leaves unavailable", { timeout: 10_000 }, async () => {
  await withServer(["hang"], async (server) => {
    const { api, calls } = makeApi();
    await handle(makeEvent({ secrets: secretsFor(server) }), api, FAST);

    assert.equal(server.requests.length, 2);
    // Each attempt was given up by the Action, unanswered (the server notices as it closes).
    while (!server.requests.every((r) => r.abandoned)) await new Promise((r) => setTimeout(r, 10));
    assertOnlyErrorClaim(calls, "unavailable");
  });
});

test("a refused connection is retried once and leaves unavailable", async () => {
  const server = await startWebhookServer([ACCEPTED]);
  const { url } = server;
  await server.close();
  const { api, calls } = makeApi();
  await handle(makeEvent({ secrets: { INVITES_WEBHOOK_URL: url, INVITES_WEBHOOK_SECRET: SECRET } }), api, FAST);
  assertOnlyErrorClaim(calls, "unavailable");
});

test("401 (bad signature) is unavailable and not retried", async () => {
  const server = await startWebhookServer([ACCEPTED], {
    secret: "whsec_" + Buffer.from("a different secret entirely").toString("base64"),
  });
  try {
    const { api, calls } = makeApi();
    await action.onExecutePostLogin(makeEvent({ secrets: secretsFor(server) }), api);
    assert.equal(server.requests.length, 1);
    assert.equal(server.requests[0].verified, false);
    assertOnlyErrorClaim(calls, "unavailable");
  } finally {
    await server.close();
  }
});

test("a 200 that is not an acceptance is treated as unavailable", async () => {
  await withServer([{ status: 200, json: { hello: "world" } }], async (server) => {
    const { api, calls } = makeApi();
    await action.onExecutePostLogin(makeEvent({ secrets: secretsFor(server) }), api);
    assertOnlyErrorClaim(calls, "unavailable");
  });
});

test("no invitation in the query: nothing is sent and nothing is set", async () => {
  await withServer([ACCEPTED], async (server) => {
    const { api, calls } = makeApi();
    const event = makeEvent({ secrets: secretsFor(server) });
    delete event.request.query.invitation;
    const { lines } = await captureConsole(() => action.onExecutePostLogin(event, api));

    assert.equal(server.requests.length, 0);
    assert.deepEqual(calls, makeApi().calls); // nothing asked of the api
    assert.deepEqual(lines, []);
  });
});

// Every non-interactive protocol Auth0 runs the post-login trigger for, as that request looks,
// each with the invitation in the query and in the body: none of them may redeem.
const NON_INTERACTIVE = {
  "password grant (ROPG)": { protocol: "oauth2-password", body: { grant_type: "password", username: "ada@example.com" } },
  "legacy resource owner": { protocol: "oauth2-resource-owner", body: { grant_type: "password" } },
  "refresh token": { protocol: "oauth2-refresh-token", body: { grant_type: "refresh_token" } },
  "device code": { protocol: "oauth2-device-code", body: { grant_type: "urn:ietf:params:oauth:grant-type:device_code" } },
  "token exchange": { protocol: "oauth2-token-exchange", body: { grant_type: "urn:ietf:params:oauth:grant-type:token-exchange" } },
  "social access token": { protocol: "oauth2-access-token", body: { access_token: "x", connection: "google-oauth2" } },
  "native passkey": { protocol: "oauth2-webauthn", body: { grant_type: "urn:okta:params:oauth:grant-type:webauthn" } },
  "WS-Trust username": { protocol: "wstrust-usernamemixed", body: {} },
  // Auth0 runs the credentials-exchange trigger, not post-login, for client credentials; were a
  // run to arrive with such a request, its protocol is not on the list either.
  "client credentials": { protocol: "oauth2-client-credentials", body: { grant_type: "client_credentials" } },
  "no protocol at all": { protocol: undefined, body: {} },
};

test("non-interactive protocols send nothing, even with the invitation in query and body", async (t) => {
  for (const [name, { protocol, body }] of Object.entries(NON_INTERACTIVE)) {
    await t.test(name, async () => {
      await withServer([ACCEPTED], async (server) => {
        const { api, calls } = makeApi();
        const event = makeEvent({
          secrets: secretsFor(server),
          transaction: { protocol, prompt: undefined },
          request: { method: "POST", body: { ...body, client_id: "client_123", invitation: TOKEN } },
        });
        const { lines } = await captureConsole(() => action.onExecutePostLogin(event, api));
        assert.equal(server.requests.length, 0);
        assert.deepEqual(calls, makeApi().calls); // nothing asked of the api
        assert.equal(lines.length, 1);
        assert.match(lines[0], /invitation ignored: not an interactive login \(protocol=[a-z0-9-]+\)/);
      });
    });
  }
});

test("an event without a transaction object sends nothing", async () => {
  await withServer([ACCEPTED], async (server) => {
    const { api, calls } = makeApi();
    const event = makeEvent({ secrets: secretsFor(server) });
    delete event.transaction;
    await action.onExecutePostLogin(event, api);
    assert.equal(server.requests.length, 0);
    assert.deepEqual(calls, makeApi().calls);
  });
});

test("each interactive protocol with the link in its request redeems", async (t) => {
  const protocols = ["oidc-basic-profile", "oidc-implicit-profile", "oidc-hybrid-profile", "samlp", "wsfed"];
  assert.deepEqual([...action._internal.INTERACTIVE_PROTOCOLS].sort(), [...protocols].sort());
  for (const protocol of protocols) {
    await t.test(protocol, async () => {
      await withServer([ACCEPTED], async (server) => {
        const { api, calls } = makeApi();
        await action.onExecutePostLogin(makeEvent({ secrets: secretsFor(server), transaction: { protocol } }), api);
        assert.equal(server.requests.length, 1);
        assert.equal(server.requests[0].payload.invitation, TOKEN);
        assert.deepEqual(calls.idToken, { [`${NS}roles`]: ["customer", "member"] });
      });
    });
  }
});

// A login over an existing single-sign-on session: no form, the authentication methods are the
// session's first sign-in (hours ago), the invitation was in that earlier login's request.
function ssoEvent(server, query) {
  const event = makeEvent({
    secrets: secretsFor(server),
    authentication: { methods: [{ name: "pwd", timestamp: "2026-12-06T08:00:00.000Z" }] },
    session: { id: "sess_1", created_at: "2026-12-06T08:00:00.000Z", authenticated_at: "2026-12-06T08:00:00.000Z" },
    stats: { logins_count: 4 },
  });
  event.request.query = query;
  return event;
}

test("an SSO login without the invitation in its own request sends nothing", async () => {
  await withServer([ACCEPTED], async (server) => {
    const { api, calls } = makeApi();
    const event = ssoEvent(server, { client_id: "client_123", response_type: "code", scope: "openid" });
    event.request.body = { invitation: TOKEN };
    const { lines } = await captureConsole(() => action.onExecutePostLogin(event, api));
    assert.equal(server.requests.length, 0);
    assert.deepEqual(calls, makeApi().calls);
    assert.deepEqual(lines, []);
  });
});

test("an SSO login whose own request carries the link redeems (the link opened while signed in)", async () => {
  await withServer([ACCEPTED], async (server) => {
    const { api, calls } = makeApi();
    const event = ssoEvent(server, { client_id: "client_123", response_type: "code", invitation: TOKEN });
    await action.onExecutePostLogin(event, api);
    assert.equal(server.requests.length, 1);
    assert.equal(server.requests[0].payload.is_new_user, false);
    assert.deepEqual(calls.idToken, { [`${NS}roles`]: ["customer", "member"] });
  });
});

test("silent authentication (prompt=none) sends nothing", async (t) => {
  const cases = {
    "transaction.prompt": { transaction: { prompt: ["none"] } },
    "query prompt": { request: { query: { invitation: TOKEN, prompt: "none" } } },
  };
  for (const [name, overrides] of Object.entries(cases)) {
    await t.test(name, async () => {
      await withServer([ACCEPTED], async (server) => {
        const { api, calls } = makeApi();
        await action.onExecutePostLogin(makeEvent({ ...overrides, secrets: secretsFor(server) }), api);
        assert.equal(server.requests.length, 0);
        assert.deepEqual(calls, makeApi().calls); // nothing asked of the api
      });
    });
  }
});

test("missing secrets: no request, no throw, unavailable", async (t) => {
  const cases = {
    "no secrets at all": undefined,
    "no URL": { INVITES_WEBHOOK_SECRET: SECRET },
    "no signing secret": { INVITES_WEBHOOK_URL: "http://127.0.0.1:9/v1/webhooks/auth0" },
    "signing secret is not base64": { INVITES_WEBHOOK_URL: "http://127.0.0.1:9/x", INVITES_WEBHOOK_SECRET: "whsec_" },
  };
  for (const [name, secrets] of Object.entries(cases)) {
    await t.test(name, async () => {
      const { api, calls } = makeApi();
      const { lines } = await captureConsole(() => action.onExecutePostLogin(makeEvent({ secrets }), api));
      assertOnlyErrorClaim(calls, "unavailable");
      assert.equal(lines.length, 1);
      assert.doesNotMatch(lines[0], /attempts=/, "no request may be attempted");
    });
  }
});

test("a malformed invitation parameter is invalid_link without a request", async () => {
  await withServer([ACCEPTED], async (server) => {
    const { api, calls } = makeApi();
    const event = makeEvent({ secrets: secretsFor(server) });
    event.request.query.invitation = ["a", "b"];
    await action.onExecutePostLogin(event, api);
    assert.equal(server.requests.length, 0);
    assertOnlyErrorClaim(calls, "invalid_link");
  });
});

test("an api that throws does not make the Action throw", async () => {
  await withServer([ACCEPTED], async (server) => {
    const broken = {
      idToken: { setCustomClaim: () => { throw new Error("boom"); } },
      accessToken: { setCustomClaim: () => { throw new Error("boom"); } },
      access: { deny: () => assert.fail("deny must never be called") },
    };
    await captureConsole(() => action.onExecutePostLogin(makeEvent({ secrets: secretsFor(server) }), broken));
  });
});

test("the token and the secrets never appear in anything the Action logs", async () => {
  const scripts = [
    [ACCEPTED],
    [{ status: 409, json: { result: "rejected", reason: "email_mismatch" } }],
    [{ status: 404, json: {} }],
    [{ status: 500, json: {} }],
    ["hang"],
  ];
  const everything = [];
  for (const script of scripts) {
    await withServer(script, async (server) => {
      const { api } = makeApi();
      const { lines } = await captureConsole(() => handle(makeEvent({ secrets: secretsFor(server) }), api, FAST));
      assert.ok(lines.length >= 1, "each outcome is logged");
      everything.push(...lines);
    });
  }
  for (const secrets of [undefined, { INVITES_WEBHOOK_URL: "http://127.0.0.1:9/x", INVITES_WEBHOOK_SECRET: "whsec_" }]) {
    const { api } = makeApi();
    const { lines } = await captureConsole(() => action.onExecutePostLogin(makeEvent({ secrets }), api));
    everything.push(...lines);
  }
  const { lines } = await captureConsole(() =>
    action.onExecutePostLogin(makeEvent({ transaction: { protocol: "oauth2-refresh-token" } }), makeApi().api),
  );
  everything.push(...lines);

  const secretKey = SECRET.slice("whsec_".length);
  for (const line of everything) {
    assert.ok(!line.includes(TOKEN), `token logged: ${line}`);
    assert.ok(!line.includes(TOKEN.split(".").pop()), `token MAC logged: ${line}`);
    assert.ok(!line.includes(secretKey), `secret logged: ${line}`);
    assert.ok(!line.includes("ada@example.com"), `email logged: ${line}`);
    assert.ok(line.length <= 256, `line longer than Auth0 keeps: ${line}`);
  }
  assert.ok(everything.some((line) => line.includes("accepted")));
});

test("isInteractiveLogin follows the documented event fields", () => {
  const { isInteractiveLogin } = action._internal;
  assert.equal(isInteractiveLogin(makeEvent()), true);
  assert.equal(isInteractiveLogin(makeEvent({ transaction: { protocol: "oauth2-refresh-token" } })), false);
  assert.equal(isInteractiveLogin(makeEvent({ transaction: { protocol: "oauth2-password" } })), false);
  assert.equal(isInteractiveLogin(makeEvent({ transaction: { protocol: "samlp" } })), true);
  assert.equal(isInteractiveLogin(makeEvent({ transaction: { protocol: "samlp", prompt: ["none"] } })), false);
  assert.equal(isInteractiveLogin(makeEvent({ transaction: { protocol: "OIDC-BASIC-PROFILE" } })), false);
  assert.equal(isInteractiveLogin(makeEvent({ transaction: { prompt: ["none"] } })), false);
  assert.equal(isInteractiveLogin(makeEvent({ transaction: { prompt: ["login"] } })), true);
  assert.equal(isInteractiveLogin(makeEvent({ request: { query: { prompt: "none" } } })), false);
  assert.equal(isInteractiveLogin(makeEvent({ request: { query: { prompt: "login consent" } } })), true);
});
