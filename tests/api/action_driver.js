#!/usr/bin/env node
/**
 * Run the real Auth0 Action (`auth0/actions/post-login.js`, `onExecutePostLogin`) once, the way
 * a tenant runs it after an interactive login, and print what it did as JSON.
 *
 *   echo '{"token": "...", "user": {...}, "webhook_url": "http://127.0.0.1:PORT/v1/webhooks/auth0",
 *          "webhook_secret": "whsec_...", "logins_count": 1}' | node tests/api/action_driver.js
 *
 * prints `runAction`'s record (auth0/actions/scripts/runtime.js): {"idToken": {claim: value},
 * "accessToken": {...}, "denied": [reasons], "logs": [lines], "error": null | {...}}.
 * Optional input: `connection` ({name, strategy}), `claim_namespace`.
 */
const path = require("node:path");
const { loginEvent, printAndExit, readStdin, runAction } = require("../../auth0/actions/scripts/runtime");

const ACTION = path.join(__dirname, "..", "..", "auth0", "actions", "post-login.js");

async function main() {
  const input = JSON.parse(await readStdin());
  const secrets = {
    INVITES_WEBHOOK_URL: input.webhook_url,
    INVITES_WEBHOOK_SECRET: input.webhook_secret,
  };
  if (input.claim_namespace) secrets.INVITES_CLAIM_NAMESPACE = input.claim_namespace;
  const event = loginEvent({
    invitation: input.token,
    connection: input.connection || {},
    secrets,
    stats: { logins_count: input.logins_count ?? 1 },
    user: input.user,
  });
  printAndExit(await runAction(ACTION, event));
}

main().catch((err) => {
  process.stderr.write(`action_driver.js: ${(err && err.stack) || err}\n`);
  process.exit(2);
});
