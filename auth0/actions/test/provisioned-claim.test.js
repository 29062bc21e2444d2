/**
 * The Action's two token-less branches: the first login of an account a provisioned invitation
 * created (redeem by `invitation_id`), and the claim by verified email, asked once per account.
 * Its budget: ordinary logins send nothing, and a claim is one attempt, never retried.
 */
const { afterEach, beforeEach, test } = require("node:test");
const assert = require("node:assert/strict");

const action = require("../post-login");
const { NS, SECRET, captureConsole, makeApi, makeEvent, startWebhookServer } = require("./stubs");

const { handle } = action._internal;
const FAST = { timeoutMs: 250, retryDelayMs: 10 };
const INVITATION_ID = "inv_01HZX7Q3J4C5B6N7M8P9R0S1T2";
const ACCEPTED = {
  status: 200,
  json: { result: "accepted", invitation_id: INVITATION_ID, roles: ["customer"], grant: "done" },
};
const NONE = { status: 200, json: { result: "none" } };
const CLAIMED = {
  status: 200,
  json: {
    result: "claimed",
    invitations: [
      { invitation_id: INVITATION_ID, roles: ["customer"], grant: "done" },
      { invitation_id: "inv_01HZX7Q3J4C5B6N7M8P9R0S1T3", roles: ["member", "customer"], grant: "pending" },
    ],
  },
};

const realLog = console.log;
beforeEach(() => { console.log = () => {}; });
afterEach(() => { console.log = realLog; });

async function withServer(script, fn) {
  const server = await startWebhookServer(script);
  try {
    return await fn(server);
  } finally {
    await server.close();
  }
}

function secretsFor(server) {
  return { INVITES_WEBHOOK_URL: server.url, INVITES_WEBHOOK_SECRET: SECRET };
}

/** A login without a link, by a user with this `app_metadata` and verified flag. */
function linklessEvent(server, { appMetadata = {}, verified = true, ...overrides } = {}) {
  const event = makeEvent({
    secrets: secretsFor(server),
    user: { email_verified: verified, app_metadata: appMetadata },
    ...overrides,
  });
  delete event.request.query.invitation;
  return event;
}

const INVITED = { invites: { status: "invited", invitation_id: INVITATION_ID } };

test("a provisioned account's first login redeems its invitation by id, with no token", async () => {
  await withServer([ACCEPTED], async (server) => {
    const { api, calls } = makeApi();
    await action.onExecutePostLogin(linklessEvent(server, { appMetadata: INVITED }), api);

    assert.equal(server.requests.length, 1);
    const { payload, verified } = server.requests[0];
    assert.equal(verified, true);
    assert.equal(payload.type, "invitation.redeem");
    assert.equal(payload.invitation_id, INVITATION_ID);
    assert.equal("invitation" in payload, false);
    assert.equal(payload.user.user_id, "auth0|u1");
    assert.deepEqual(calls.idToken, { [`${NS}roles`]: ["customer"] });
    assert.deepEqual(calls.accessToken, { [`${NS}roles`]: ["customer"] });
    assert.equal(calls.appMetadata, null); // the grant sets `active`, beside what it writes
  });
});

test("a provisioned redeem refused for good marks the account ended and keeps its other keys", async () => {
  await withServer([{ status: 410, json: { result: "rejected", reason: "expired" } }], async (server) => {
    const { api, calls } = makeApi();
    const appMetadata = { invites: { ...INVITED.invites, data: { plan: "pro" } }, other: 1 };
    await action.onExecutePostLogin(linklessEvent(server, { appMetadata }), api);

    assert.equal(server.requests.length, 1);
    assert.deepEqual(calls.idToken, { [`${NS}invitation_error`]: "expired" });
    assert.deepEqual(calls.appMetadata, {
      invites: { status: "ended", reason: "expired", invitation_id: INVITATION_ID, data: { plan: "pro" } },
    });
  });
});

test("a provisioned redeem the service cannot answer is retried once and asked again next login", async () => {
  await withServer([{ status: 503, json: {} }], async (server) => {
    const { api, calls } = makeApi();
    await handle(linklessEvent(server, { appMetadata: INVITED }), api, FAST);
    assert.equal(server.requests.length, 2);
    assert.deepEqual(calls.idToken, { [`${NS}invitation_error`]: "unavailable" });
    assert.equal(calls.appMetadata, null);
  });
});

test("an invited status with a malformed invitation id is an ordinary login", async () => {
  await withServer([ACCEPTED], async (server) => {
    const { api } = makeApi();
    const appMetadata = { invites: { status: "invited", invitation_id: "inv_<script>" }, };
    await action.onExecutePostLogin(linklessEvent(server, { appMetadata, verified: false }), api);
    assert.equal(server.requests.length, 0);
  });
});

test("a verified account never asked claims once; `none` marks it asked, keeping invites' other keys", async () => {
  await withServer([NONE], async (server) => {
    const { api, calls } = makeApi();
    const appMetadata = { invites: { data: { plan: "pro" }, status: "active" } };
    await action.onExecutePostLogin(linklessEvent(server, { appMetadata }), api);

    assert.equal(server.requests.length, 1);
    const { payload } = server.requests[0];
    assert.equal(payload.type, "invitation.claim");
    assert.equal(payload.user.email_verified, true);
    assert.equal(payload.user.email, "ada@example.com");
    assert.equal("invitation" in payload || "invitation_id" in payload, false);
    assert.deepEqual(calls.idToken, {});
    const { invites } = calls.appMetadata;
    assert.deepEqual(invites.data, { plan: "pro" });
    assert.equal(invites.status, "active");
    assert.ok(!Number.isNaN(Date.parse(invites.claimed_at)));
  });
});

test("claimed invitations set their roles (each once) and leave the marking to the grant", async () => {
  await withServer([CLAIMED], async (server) => {
    const { api, calls } = makeApi();
    await action.onExecutePostLogin(linklessEvent(server), api);
    assert.equal(server.requests.length, 1);
    assert.deepEqual(calls.idToken, { [`${NS}roles`]: ["customer", "member"] });
    assert.deepEqual(calls.accessToken, { [`${NS}roles`]: ["customer", "member"] });
    assert.equal(calls.appMetadata, null);
  });
});

test("the budget: an account asked before, or unverified, sends nothing, logs nothing, sets nothing", async (t) => {
  const cases = {
    "asked before": (e) => { e.user.app_metadata = { invites: { claimed_at: "2026-12-01T00:00:00.000Z" } }; },
    "unverified address": (e) => { e.user.email_verified = false; },
    "no email at all": (e) => { delete e.user.email; },
  };
  for (const [name, change] of Object.entries(cases)) {
    await t.test(name, async () => {
      await withServer([NONE], async (server) => {
        const { api, calls } = makeApi();
        const event = linklessEvent(server);
        change(event);
        assert.equal(action._internal.loginKind(event, undefined, {}) === "claim", name === "asked before");
        const { lines } = await captureConsole(() => action.onExecutePostLogin(event, api));
        assert.equal(server.requests.length, 0);
        assert.deepEqual(calls, makeApi().calls);
        assert.deepEqual(lines, []);
      });
    });
  }
});

test("a second login after `none` does not ask again", async () => {
  await withServer([NONE], async (server) => {
    const first = makeApi();
    await action.onExecutePostLogin(linklessEvent(server), first.api);
    // Auth0 applies the Action's app_metadata to the user; the next login reads it back.
    const second = makeApi();
    await action.onExecutePostLogin(linklessEvent(server, { appMetadata: first.calls.appMetadata }), second.api);
    assert.equal(server.requests.length, 1);
    assert.deepEqual(second.calls, makeApi().calls);
  });
});

test("a claim the service does not answer in time is one attempt, not retried, not marked", { timeout: 5_000 }, async () => {
  await withServer(["hang"], async (server) => {
    const { api, calls } = makeApi();
    const started = Date.now();
    await handle(linklessEvent(server), api, FAST);
    assert.ok(Date.now() - started < FAST.timeoutMs + 500);
    assert.equal(server.requests.length, 1);
    assert.equal(calls.appMetadata, null); // asked again at the next login
    assert.deepEqual(calls.idToken, {});
  });
});

test("a claim answered 500 is not retried and not marked", async () => {
  await withServer([{ status: 500, json: {} }, NONE], async (server) => {
    const { api, calls } = makeApi();
    await handle(linklessEvent(server), api, FAST);
    assert.equal(server.requests.length, 1);
    assert.equal(calls.appMetadata, null);
  });
});

test("a claim is not asked on a non-interactive login, silently", async () => {
  await withServer([NONE], async (server) => {
    const { api, calls } = makeApi();
    const event = linklessEvent(server, { transaction: { protocol: "oauth2-refresh-token" } });
    const { lines } = await captureConsole(() => action.onExecutePostLogin(event, api));
    assert.equal(server.requests.length, 0);
    assert.deepEqual(calls, makeApi().calls);
    assert.deepEqual(lines, []);
  });
});

test("a link in the request takes precedence over the invited status and the claim", async () => {
  await withServer([ACCEPTED], async (server) => {
    const { api } = makeApi();
    const event = makeEvent({ secrets: secretsFor(server), user: { email_verified: true, app_metadata: INVITED } });
    await action.onExecutePostLogin(event, api);
    assert.equal(server.requests.length, 1);
    assert.equal(typeof server.requests[0].payload.invitation, "string");
    assert.equal("invitation_id" in server.requests[0].payload, false);
  });
});
