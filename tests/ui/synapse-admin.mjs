// The real synapse-admin web app (tests/synapse-admin/app, release 0.11.4, built by
// scripts/test.sh with its own yarn) in Debian's headless Chromium against a running Hearth.
// Called by tests/tests/synapse_admin_in_chromium.rs, which prepared the server; prints one
// JSON line with what the app showed and every admin API answer it got, so the Rust side can
// check the results through the Matrix API.
//
//   node synapse-admin.mjs <app-dist> <homeserver-url> <json>
//
// json: {"admin", "password", "edit", "device" (one of edit's), "garden" (a room of edit's),
//        "erase", "room", "roomName" (the room to delete), "report", "reportReason", "notice"}
// Screenshots go to $SCREENSHOTS (synapse-admin-*.png).

import { chromium } from "playwright-core";
import http from "node:http";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import path from "node:path";

const [, , dist, homeserver, json] = process.argv;
const want = JSON.parse(json);
const shots = process.env.SCREENSHOTS || "screenshots";
mkdirSync(shots, { recursive: true });
for (const old of readdirSync(shots).filter((f) => f.startsWith("synapse-admin-"))) rmSync(`${shots}/${old}`);

function check(cond, message) {
  if (!cond) throw new Error(message);
}

// The app as its release is served: static files, index.html for every other path.
const types = { ".js": "text/javascript", ".html": "text/html", ".json": "application/json", ".css": "text/css",
  ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon", ".woff2": "font/woff2" };
const site = http.createServer((req, res) => {
  const p = decodeURIComponent(new URL(req.url, "http://app").pathname);
  let file = path.join(dist, path.normalize(p));
  if (!file.startsWith(dist) || !existsSync(file) || statSync(file).isDirectory()) file = path.join(dist, "index.html");
  res.writeHead(200, { "content-type": types[path.extname(file)] || "application/octet-stream" });
  res.end(readFileSync(file));
});
await new Promise((ok) => site.listen(0, "127.0.0.1", ok));
const app = `http://127.0.0.1:${site.address().port}/`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const errors = [];
// Every answer from the homeserver: the Rust side checks none failed.
const answers = [];
// The 0.11.4 release's footer script names a build constant its build no longer defines (the
// version shown in the footer); the app itself does not depend on it.
page.on("pageerror", (e) => {
  if (!e.message.includes("__SYNAPSE_ADMIN_VERSION__")) errors.push(e.message);
});
page.on("response", (r) => {
  if (r.url().startsWith(homeserver)) {
    answers.push({ method: r.request().method(), path: new URL(r.url()).pathname, status: r.status() });
  }
});
let shot = 0;
const snap = async (name) => page.screenshot({ path: `${shots}/synapse-admin-${++shot}-${name}.png` });

/** Runs `act` and waits for the homeserver's answer to `method` on a path matching `re`. */
async function answered(method, re, act) {
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url().startsWith(homeserver) && r.request().method() === method
      && re.test(new URL(r.url()).pathname), { timeout: 20000 }),
    act(),
  ]);
  check(res.ok(), `${method} ${res.url()}: ${res.status()} ${await res.text()}`);
  return res;
}

const seen = {};
try {
  // Sign in, as an admin types it: the homeserver's address, a name and a password.
  await page.goto(app);
  // The app asks the homeserver's login flows for the address typed.
  const flows = page.waitForResponse((r) => r.url().startsWith(homeserver) && r.url().includes("/login"));
  await page.locator('input[name="base_url"]').fill(homeserver);
  await flows;
  await page.locator('input[name="username"]').fill(want.admin);
  await page.locator('input[name="password"]').fill(want.password);
  await snap("login");
  await answered("POST", /\/_matrix\/client\/(r0|v3)\/login$/, () =>
    page.getByRole("button", { name: "Sign in", exact: true }).click());

  // The users list, with the people the test made.
  await page.getByText(want.edit, { exact: true }).first().waitFor();
  await page.getByText(want.erase, { exact: true }).first().waitFor();
  seen.users = await page.locator("table tbody tr:visible").count();
  await snap("users");

  // Edit a user: a new display name, saved.
  const editUrl = `${app}#/users/${encodeURIComponent(want.edit)}`;
  await answered("GET", /\/_synapse\/admin\/v2\/users\/[^/]+$/, () => page.goto(editUrl));
  const name = page.locator('input[name="displayname"]');
  await name.waitFor();
  await name.fill("Nana Smith");
  // The release's footer lies over the form's bottom bar, so a click at the button's place
  // lands on the footer: the click goes to the button itself.
  await answered("PUT", /\/_synapse\/admin\/v2\/users\/[^/]+$/, () =>
    page.getByRole("button", { name: "Save", exact: true }).dispatchEvent("click"));
  // Saved, the app goes back to the list, where the new name shows.
  await page.waitForURL(/#\/users$/);
  await page.getByText("Nana Smith").first().waitFor();
  await snap("user-saved");

  // A server notice to that user, from their page.
  await answered("GET", /\/_synapse\/admin\/v2\/users\/[^/]+$/, () => page.goto(editUrl));
  await page.locator('input[name="displayname"]').waitFor();
  await page.getByRole("button", { name: "Send server notices" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.locator('textarea[name="body"]').fill(want.notice);
  await answered("POST", /\/_synapse\/admin\/v1\/send_server_notice$/, () =>
    dialog.getByRole("button", { name: "Send note" }).click());
  await snap("notice-sent");

  // Their media, devices and rooms: tabs of the same page (the app loaded them with it).
  await page.goto(`${editUrl}/media`);
  await page.getByText("roses.png").first().waitFor();
  seen.media = await page.locator("table tbody tr:visible").count();
  await snap("user-media");
  await page.goto(`${editUrl}/devices`);
  await page.getByText(want.device).first().waitFor();
  await snap("user-devices");
  await page.goto(`${editUrl}/rooms`);
  await page.getByText(want.garden).first().waitFor();
  await snap("user-rooms");

  // Deactivate (and erase) another user, from their page.
  await answered("GET", /\/_synapse\/admin\/v2\/users\/[^/]+$/, () =>
    page.goto(`${app}#/users/${encodeURIComponent(want.erase)}`));
  await page.locator('input[name="displayname"]').waitFor();
  await page.getByRole("button", { name: "Erase user data" }).click();
  await answered("POST", /\/_synapse\/admin\/v1\/deactivate\/[^/]+$/, () =>
    page.getByRole("dialog").getByRole("button", { name: "Confirm" }).click());
  await snap("user-erased");

  // The rooms list, then one room deleted from its page.
  await answered("GET", /\/_synapse\/admin\/v1\/rooms$/, () => page.goto(`${app}#/rooms`));
  await page.getByText(want.roomName, { exact: true }).first().waitFor();
  seen.rooms = await page.locator("table tbody tr:visible").count();
  await snap("rooms");
  await answered("GET", /\/_synapse\/admin\/v1\/rooms\/[^/]+$/, () =>
    page.goto(`${app}#/rooms/${encodeURIComponent(want.room)}/show`));
  await page.getByText(want.room).first().waitFor();
  await answered("GET", /\/_synapse\/admin\/v1\/rooms\/[^/]+\/members$/, () =>
    page.goto(`${app}#/rooms/${encodeURIComponent(want.room)}/show/members`));
  await snap("room-members");
  await page.getByRole("button", { name: "Delete", exact: true }).click();
  await answered("DELETE", /\/_synapse\/admin\/v2\/rooms\/[^/]+$/, () =>
    page.getByRole("dialog").getByRole("button", { name: "Confirm" }).click());
  await page.waitForURL(/#\/rooms$/);
  await snap("room-deleted");

  // Reported events: the list, then the report.
  await answered("GET", /\/_synapse\/admin\/v1\/event_reports$/, () => page.goto(`${app}#/reports`));
  await page.locator("table tbody tr", { hasText: want.garden }).filter({ hasText: want.edit }).waitFor();
  await snap("reports");
  await answered("GET", /\/_synapse\/admin\/v1\/event_reports\/[^/]+$/, () =>
    page.goto(`${app}#/reports/${want.report}/show`));
  await page.getByText(want.reportReason).first().waitFor();
  await snap("report");

  // Media use per user, and the federation destinations page (none: no federation here).
  await answered("GET", /\/_synapse\/admin\/v1\/statistics\/users\/media$/, () =>
    page.goto(`${app}#/user_media_statistics`));
  await page.getByText(want.edit).first().waitFor();
  await snap("media-statistics");
  await answered("GET", /\/_synapse\/admin\/v1\/federation\/destinations$/, () => page.goto(`${app}#/destinations`));
  await snap("destinations");
  await answered("GET", /\/_synapse\/admin\/v1\/registration_tokens$/, () =>
    page.goto(`${app}#/registration_tokens`));
  await snap("registration-tokens");
} catch (e) {
  await snap("failed").catch(() => {});
  errors.push(String(e.stack || e));
}
await browser.close();
site.close();
console.log(JSON.stringify({ seen, errors, answers }));
