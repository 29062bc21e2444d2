const { test } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const path = require("node:path");
const { spawnSync } = require("node:child_process");
const { Webhook } = require("standardwebhooks");

const { signWebhook } = require("../post-login")._internal;
const { SECRET } = require("./stubs");

const CLI = path.join(__dirname, "..", "scripts", "sign.js");

function runCli(input) {
  const result = spawnSync(process.execPath, [CLI], { input, encoding: "utf8" });
  return { ...result, json: result.status === 0 ? JSON.parse(result.stdout) : undefined };
}

const PAYLOAD = {
  type: "invitation.redeem",
  invitation: "v1.k1.inv_x.1.mac",
  user: { user_id: "auth0|u1", email: "zoë@example.com", email_verified: true, name: "Zoë Ünïcode" },
  connection: { name: "Username-Password-Authentication", strategy: "auth0" },
  is_new_user: false,
};

test("the CLI prints the same headers and body as the Action's signing function", () => {
  const input = { secret: SECRET, payload: PAYLOAD, msg_id: "msg_interop_1", timestamp: 1700000000 };
  const { status, stderr, json } = runCli(JSON.stringify(input));
  assert.equal(status, 0, stderr);
  assert.deepEqual(json, signWebhook({ secret: SECRET, payload: PAYLOAD, msgId: "msg_interop_1", timestamp: 1700000000 }));
  assert.deepEqual(Object.keys(json.headers).sort(), ["content-type", "webhook-id", "webhook-signature", "webhook-timestamp"]);
  assert.equal(json.headers["webhook-id"], "msg_interop_1");
  assert.equal(json.headers["webhook-timestamp"], "1700000000");
  assert.equal(json.headers["content-type"], "application/json");
  assert.deepEqual(JSON.parse(json.body), PAYLOAD);
});

test("the signature is the Standard Webhooks HMAC over id.timestamp.body", () => {
  const { json } = runCli(JSON.stringify({ secret: SECRET, payload: PAYLOAD, msg_id: "msg_interop_2", timestamp: 1700000123 }));
  const key = Buffer.from(SECRET.slice("whsec_".length), "base64");
  const expected = crypto
    .createHmac("sha256", key)
    .update(Buffer.from(`msg_interop_2.1700000123.${json.body}`, "utf8"))
    .digest("base64");
  assert.equal(json.headers["webhook-signature"], `v1,${expected}`);
});

test("without a timestamp the CLI signs for now and the library verifies it", () => {
  const { status, stderr, json } = runCli(JSON.stringify({ secret: SECRET, payload: PAYLOAD, msg_id: "msg_now" }));
  assert.equal(status, 0, stderr);
  assert.ok(Math.abs(Number(json.headers["webhook-timestamp"]) - Date.now() / 1000) < 60);
  assert.deepEqual(new Webhook(SECRET).verify(json.body, json.headers), PAYLOAD);
});

test("bad input exits 2 with a message on stderr", () => {
  for (const input of ["not json", "{}", JSON.stringify({ secret: SECRET }), JSON.stringify({ secret: SECRET, payload: {}, timestamp: "soon" })]) {
    const { status, stderr, stdout } = runCli(input);
    assert.equal(status, 2, `input ${input}`);
    assert.match(stderr, /^sign\.js: /);
    assert.equal(stdout, "");
  }
});
