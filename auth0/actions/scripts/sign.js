#!/usr/bin/env node
/**
 * Sign a webhook message with the Action's own signing function, for interop tests.
 *
 *   echo '{"secret": "whsec_...", "payload": {...}, "msg_id": "msg_1", "timestamp": 1700000000}' \
 *     | node auth0/actions/scripts/sign.js
 *
 * prints {"headers": {...}, "body": "..."}: `body` is the exact string that was signed and
 * must be sent byte for byte. `timestamp` (Unix seconds) defaults to now.
 */
const { signWebhook } = require("../post-login")._internal;
const { readStdin } = require("./runtime");

function fail(message) {
  process.stderr.write(`sign.js: ${message}\n`);
  process.exit(2);
}

async function main() {
  let input;
  try {
    input = JSON.parse(await readStdin());
  } catch (err) {
    fail(`stdin is not JSON (${err.message})`);
  }
  if (!input || typeof input !== "object") fail("stdin must be a JSON object");
  const { secret, payload, msg_id: msgId, timestamp } = input;
  if (typeof secret !== "string" || !secret) fail("secret must be a whsec_... string");
  if (payload === undefined) fail("payload is required");
  if (msgId !== undefined && (typeof msgId !== "string" || !msgId)) fail("msg_id must be a non-empty string");
  if (timestamp !== undefined && !Number.isInteger(timestamp)) fail("timestamp must be an integer (Unix seconds)");

  let signed;
  try {
    signed = signWebhook({ secret, payload, msgId, timestamp });
  } catch (err) {
    fail(err.message);
  }
  process.stdout.write(`${JSON.stringify(signed)}\n`);
}

main();
