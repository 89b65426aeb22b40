// The dashboard: plain ES module, no build step. Talks to /_hearth/admin/v1 with the admin key
// as a bearer token. The key arrives in the URL fragment (never sent to a server), is kept in
// sessionStorage for this tab, and is removed from the address bar at once.

const API = "/_hearth/admin/v1";
const $ = (sel) => document.querySelector(sel);

function takeToken() {
  const m = location.hash.match(/token=([A-Za-z0-9]+)/);
  if (m) {
    sessionStorage.setItem("hearth-admin-token", m[1]);
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem("hearth-admin-token");
}

let token = takeToken();

function say(text, kind = "error") {
  const box = $("#message");
  box.textContent = text;
  box.className = `message ${kind}`;
  box.hidden = !text;
}

async function api(path, { method = "GET", body } = {}) {
  const res = await fetch(API + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await res.json().catch(() => ({}));
  if (res.status === 401) {
    sessionStorage.removeItem("hearth-admin-token");
    token = null;
    show("login");
    throw new Error("The admin key is missing or wrong. Open the link Hearth printed at start again.");
  }
  if (!res.ok) throw new Error(data.error || `The server answered ${res.status}`);
  return data;
}

function bytes(n) {
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

const views = {
  async status() {
    const s = await api("/status");
    const rows = [
      ["Server", s.running ? "Running" : "Stopped"],
      ["Version", s.version],
      ["Server name", s.server_name],
      ["Address for apps", s.public_baseurl],
      ["Up for", `${Math.floor(s.uptime_seconds / 3600)} h ${Math.floor((s.uptime_seconds % 3600) / 60)} min`],
      ["Accounts", String(s.users)],
      ["Database", bytes(s.database_bytes)],
      ["Media", bytes(s.media_bytes)],
      ["Growth", growth(s.size_history)],
      ["Disk space", diskSummary(s.disk)],
      ["Database check", databaseCheck()],
      ["Secrets kept in", s.secret_store],
      ["Reachability", reachability(s.reachability)],
    ];
    const t = await api("/tls");
    if (t.enabled) rows.push(["HTTPS certificate", certificateSummary(t)]);
    $("#status-list").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    $("#backups").replaceChildren(...backupsCard(await api("/backups")));
    $("#updates").replaceChildren(...updatesCard(await api("/updates")));
  },

  async users() {
    const { users } = await api("/users");
    $("#users-body").replaceChildren(...users.map((u) => {
      const actions = el("td", { class: "actions" });
      if (!u.deactivated) {
        actions.append(
          el("button", { type: "button", onclick: () => resetPassword(u.user_id) }, "Reset password"),
          el("button", { type: "button", onclick: () => setAdmin(u.user_id, !u.is_admin) }, u.is_admin ? "Remove admin" : "Make admin"),
          el("button", { type: "button", class: "danger", onclick: () => deactivate(u.user_id) }, "Deactivate"),
        );
      }
      return el("tr", {},
        el("td", {}, u.user_id),
        el("td", {}, u.displayname || ""),
        el("td", {}, u.is_admin ? "Admin" : u.is_guest ? "Guest" : "Member"),
        el("td", {}, u.deactivated ? "Deactivated" : "Active"),
        actions);
    }));
  },

  async invites() {
    const { invites } = await api("/invites");
    $("#invites-list").replaceChildren(...invites.map((i) => {
      const uses = i.uses_allowed == null ? `${i.uses} used` : `${i.uses} of ${i.uses_allowed} used`;
      const until = i.expiry_time ? `until ${new Date(i.expiry_time).toLocaleDateString()}` : "no end date";
      const qr = i.valid && i.qr_svg
        ? [el("img", { class: "qr", alt: `QR code of the invite link ${i.link}`, src: `data:image/svg+xml;base64,${btoa(i.qr_svg)}` })]
        : [];
      return el("li", { class: i.valid ? "card" : "card spent" },
        el("label", { for: `link-${i.code}` }, i.valid ? "Invite link" : "Invite link (no longer valid)"),
        el("input", { id: `link-${i.code}`, class: "invite-link", readonly: "", value: i.link }),
        ...qr,
        el("p", {}, `${uses}, ${until}`),
        el("div", { class: "actions" },
          el("button", { type: "button", onclick: () => copy(i.link) }, "Copy link"),
          el("button", { type: "button", class: "danger", onclick: () => removeInvite(i.code) }, "Delete")));
    }));
  },
};

/// How the database and media grew (one sample a day): a line of their total and the change
/// since the first day shown.
function growth(history) {
  if (!history || history.length < 2) return "Measured every day: the growth shows from tomorrow.";
  const first = history[0];
  const last = history[history.length - 1];
  const totals = history.map((h) => h.database_bytes + h.media_bytes);
  const max = Math.max(...totals) || 1;
  const span = last.day - first.day || 1;
  const points = history.map((h, i) => `${((h.day - first.day) / span * 118 + 1).toFixed(1)},${(23 - totals[i] / max * 22).toFixed(1)}`).join(" ");
  const since = new Date(first.day * 86400000).toLocaleDateString();
  const text = `Since ${since}: database ${bytes(first.database_bytes)} → ${bytes(last.database_bytes)}, media ${bytes(first.media_bytes)} → ${bytes(last.media_bytes)}.`;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 120 24");
  svg.setAttribute("width", "120");
  svg.setAttribute("height", "24");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "Database and media size by day");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points);
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "currentColor");
  line.setAttribute("stroke-width", "1.5");
  svg.append(line);
  return el("span", { id: "growth" }, svg, " ", text);
}

/// Free space where the data folder is; an alert when it is nearly full.
function diskSummary(d) {
  if (!d) return "Not known on this system.";
  const text = `${bytes(d.free_bytes)} free of ${bytes(d.total_bytes)}.`;
  return d.warning ? el("span", { class: "warning", role: "alert" }, `${text} ${d.warning}`) : text;
}

/// SQLite's integrity and foreign-key checks, run when asked (a big database takes a while).
function databaseCheck() {
  const out = el("span", { id: "database-check" });
  const button = el("button", { type: "button", onclick: () => run(async () => {
    button.disabled = true;
    button.textContent = "Checking…";
    const r = await api("/health/database", { method: "POST", body: {} });
    const problems = [
      ...(r.integrity.length === 1 && r.integrity[0] === "ok" ? [] : r.integrity),
      ...r.foreign_keys.map((v) => `a row of ${v.table}${v.rowid == null ? "" : ` (row ${v.rowid})`} points to a missing row of ${v.parent}`),
    ];
    out.replaceChildren(r.ok
      ? `No problems found (checked in ${r.took_ms} ms).`
      : el("span", { class: "warning", role: "alert" }, `${problems.length} problem${problems.length === 1 ? "" : "s"} found: ${problems.slice(0, 5).join("; ")}. Restore a backup taken before it, or ask for help with the log.`));
  }) }, "Check the database");
  out.append(button);
  return out;
}

/// The Status page's backups: the last one and a warning when they fail or are old, "back up
/// now", and the plan (how often, where, how many to keep, encryption with a passphrase).
function backupsCard(b) {
  const out = [];
  const when = (ms) => new Date(ms).toLocaleString();
  const last = b.last;
  if (b.running) {
    out.push(el("p", { role: "status" }, "A backup is being made…"));
    setTimeout(() => run(views.status), 1000);
  }
  if (b.warning === "failing") {
    out.push(el("p", { class: "warning", role: "alert" }, `The last backup failed (${when(last.started_ms)}): ${last.error}`));
  } else if (b.warning === "old") {
    out.push(el("p", { class: "warning", role: "alert" }, `The last backup is old: ${last.last_ok_ms ? when(last.last_ok_ms) : "never"}. Check that the backup folder is there (an external disk plugged in).`));
  } else if (b.warning === "never") {
    out.push(el("p", { class: "warning", role: "alert" }, "No backup has been made yet."));
  }
  if (last && last.ok) {
    out.push(el("p", { id: "backup-last" }, `Last backup ${when(last.started_ms)} (${(last.took_ms / 1000).toFixed(1)} s): ${last.path}`));
  }
  const now = el("button", { type: "button", id: "backup-now", onclick: (e) => run(async () => {
    e.target.disabled = true;
    await api("/backups/run", { method: "POST", body: {} });
    await views.status();
  }) }, "Back up now");
  now.disabled = b.running || !b.plan.dir;
  out.push(el("p", {}, `${b.backups.length} backup${b.backups.length === 1 ? "" : "s"} in the folder.`, " ", now));
  if (!b.plan.dir) out.push(el("p", {}, "Choose a folder for backups first: an external disk or a synced folder, not this computer's disk alone."));

  const plan = b.plan;
  const schedule = el("select", { id: "backup-schedule" },
    ...[["off", "Only when I ask"], ["daily", "Every day"], ["weekly", "Every week"]].map(([v, t]) => {
      const o = el("option", { value: v }, t);
      if (plan.schedule === v) o.selected = true;
      return o;
    }));
  const dir = el("input", { id: "backup-dir", value: plan.dir || "", placeholder: "/media/usb-disk/hearth-backups", size: "40" });
  const keep = el("input", { id: "backup-keep", type: "number", min: "1", max: "1000", value: String(plan.keep) });
  const encrypted = el("input", { type: "checkbox", id: "backup-encrypted" });
  encrypted.checked = plan.encrypted;
  const passphrase = el("input", { id: "backup-passphrase", type: "password", autocomplete: "new-password", placeholder: plan.encrypted ? "unchanged" : "at least 8 characters" });
  const form = el("form", { class: "backup-plan", onsubmit: (e) => {
    e.preventDefault();
    run(async () => {
      await api("/backups", { method: "PUT", body: {
        schedule: schedule.value, dir: dir.value.trim() || null, keep: Number(keep.value),
        encrypted: encrypted.checked, passphrase: passphrase.value || null,
      } });
      await views.status();
    }, "Backup plan saved.");
  } },
    el("label", { for: "backup-schedule" }, "Back up"), schedule,
    el("label", { for: "backup-dir" }, "Into the folder"), dir,
    el("label", { for: "backup-keep" }, "Keep the newest"), keep,
    el("label", { class: "check" }, encrypted, "Encrypt the backups with a passphrase (needed for a cloud-synced folder)"),
    el("label", { for: "backup-passphrase" }, "Passphrase"), passphrase,
    el("p", { class: "warning" }, "Write the passphrase down somewhere safe: a lost passphrase means a lost backup. Nobody can open an encrypted backup without it."),
    el("button", { type: "submit" }, "Save the backup plan"));
  out.push(form);
  return out;
}

/// The Status page's updates: what the last check found and what changed, install, check now,
/// and the daily check's switch. The headless server says how it is updated instead.
function updatesCard(u) {
  if (!u.supported) return [el("p", {}, `Hearth ${u.current_version}. ${u.how}`)];
  const out = [];
  const when = (ms) => new Date(ms).toLocaleString();
  const install = u.install || {};
  if (install.state === "installing") {
    out.push(el("p", { role: "status" }, `Installing Hearth ${install.version}: the server stops for a moment and Hearth restarts.`));
    setTimeout(() => run(views.status), 2000);
  } else if (install.state === "failed") {
    out.push(el("p", { class: "warning", role: "alert" }, `Hearth ${install.version} was not installed: ${install.error}`));
  }
  if (u.available) {
    const a = u.available;
    out.push(el("p", {}, el("strong", {}, `Hearth ${a.version} is available`), ` (you have ${u.current_version}${a.date ? `; published ${new Date(a.date).toLocaleDateString()}` : ""}).`));
    if (a.notes) out.push(el("pre", { class: "notes", "aria-label": "What changed" }, a.notes));
    if (install.state !== "installing") {
      out.push(el("button", { type: "button", class: "primary", onclick: (e) => run(async () => {
        e.target.disabled = true;
        await api("/updates/install", { method: "POST", body: { version: a.version } });
        await views.status();
      }) }, `Install ${a.version} and restart`));
    }
  } else {
    out.push(el("p", {}, u.last_checked && !u.last_error ? `Hearth ${u.current_version} is the newest version.` : `Hearth ${u.current_version}.`));
  }
  if (u.last_error) out.push(el("p", { class: "warning" }, `The last check failed: ${u.last_error}`));
  const checked = u.last_checked ? `Last checked ${when(u.last_checked)}.` : "Not checked yet.";
  const next = u.checks && u.next_check ? ` Next check ${when(u.next_check)}.` : "";
  out.push(el("p", {}, checked + next, " ", el("button", { type: "button", onclick: (e) => run(async () => {
    e.target.disabled = true;
    e.target.textContent = "Checking…";
    await api("/updates/check", { method: "POST" });
    await views.status();
  }) }, "Check now")));
  const box = el("input", { type: "checkbox", id: "update-checks", onchange: (e) => run(async () => {
    await api("/updates", { method: "PUT", body: { checks: e.target.checked } });
    await views.status();
  }, e.target.checked ? "Hearth checks for updates once a day." : "Hearth no longer checks for updates on its own.") });
  box.checked = u.checks;
  out.push(el("label", { class: "check" }, box, "Check for updates once a day"));
  return out;
}

/// One line for the Status page: the certificate's days left, or an alert when apps are about
/// to refuse it (expired, expiring, renewal failing), pointing to the Reach page.
function certificateSummary(t) {
  const c = t.certificate;
  const days = Math.floor((c.not_after_ms - Date.now()) / 86400000);
  const failing = t.acme?.last_error ? ` Getting a new one failed ${t.acme.failures} time${t.acme.failures === 1 ? "" : "s"} in a row: ${t.acme.last_error}.` : "";
  let trouble = "";
  if (c.placeholder) trouble = "None from the certificate authority yet: apps refuse to connect.";
  else if (days < 0) trouble = "Expired: apps refuse to connect.";
  else if (days < 14 || failing) trouble = `Expires in ${days} day${days === 1 ? "" : "s"}.`;
  if (!trouble) return `For ${c.names.join(", ")}, ${days} days left.`;
  return el("span", { class: "warning", role: "alert" }, `${trouble}${failing} See Reach.`);
}

/// What the Reach page says of built-in HTTPS (GET /tls): the certificate served and, when
/// Hearth gets it from Let's Encrypt, how that goes. Trouble is said first, in plain words.
function httpsCard(t) {
  if (!t.enabled) {
    return [el("p", {}, "Hearth does not serve HTTPS itself: a reverse proxy or tunnel in front of it does (below).")];
  }
  const c = t.certificate;
  const ca = t.acme ? (t.acme.url.includes("letsencrypt.org") ? "Let's Encrypt" : new URL(t.acme.url).host) : "";
  const days = Math.floor((c.not_after_ms - Date.now()) / 86400000);
  const out = [];
  const warn = (text) => out.push(el("p", { class: "warning", role: "alert" }, text));
  if (c.placeholder) {
    warn(`No certificate from ${ca} yet: apps see a self-signed one and refuse to connect until it arrives.`);
  } else if (days < 0) {
    warn("The certificate has expired: apps refuse to connect.");
  } else if (days < 14) {
    warn(`The certificate expires in ${days} day${days === 1 ? "" : "s"}.`);
  }
  if (t.acme?.last_error) {
    const again = t.acme.next_attempt_ms ? ` Hearth tries again at ${when(t.acme.next_attempt_ms)}.` : "";
    const times = t.acme.failures > 1 ? ` (${t.acme.failures} attempts in a row failed)` : "";
    warn(`Getting the certificate failed${times}: ${t.acme.last_error}.${again}`);
  }
  out.push(el("p", {}, c.placeholder
    ? `For ${t.acme.domains.join(" and ")}.`
    : `For ${c.names.join(", ")}, valid until ${new Date(c.not_after_ms).toLocaleDateString()} (${days} days left).`));
  out.push(el("p", {}, t.acme
    ? `From ${ca}, renewed by Hearth${!c.placeholder && !t.acme.last_error && t.acme.next_attempt_ms ? ` (next renewal ${when(t.acme.next_attempt_ms)})` : ""}.`
    : "From the certificate files in the configuration; Hearth takes renewed files without a restart."));
  return out;
}

views.reach = async () => {
  $("#https-now").replaceChildren(...httpsCard(await api("/tls")));
  const t = await api("/turn");
  $("#turn-now").textContent = t.uris.length
    ? `Calls use ${t.uris.join(" and ")}${t.credentials ? "." : ", but no credentials are set for it."}`
    : "No TURN server yet: calls between two strict networks may fail to connect.";
};

let setupState = null;
/// A step chosen in the step list to change its answer; otherwise the server's current step.
let revisit = null;
/// The "restore from a backup" form is open instead of the wizard's step.
let restoring = false;

views.setup = async () => {
  setupState = await api("/setup");
  const s = setupState;
  const shown = restoring ? "restore" : (revisit || s.current);
  revisit = null;
  if (shown === "welcome") {
    // Offered only while this server has nothing of its own a restore would replace.
    const r = await api("/restore");
    $("#restore-offer").hidden = !r.allowed;
    if (r.last && !r.last.ok) say(`The backup was not restored: ${r.last.error}. This new server is as it was.`);
  }
  const names = { welcome: "Welcome", reach: "Connections", server_name: "Server name", admin: "Your account", registration: "Who can join", check: "Check", done: "Ready" };
  $("#setup-steps").replaceChildren(...s.steps.map((step) => {
    const label = `${names[step]}${s.done.includes(step) ? " ✓" : ""}`;
    // Done steps can be opened again to change the answer (the account step only adds one).
    const li = el("li", {}, s.done.includes(step) && step !== shown
      ? el("button", { type: "button", class: "link", onclick: () => { revisit = step; run(views.setup); } }, label)
      : label);
    if (step === shown) li.setAttribute("aria-current", "step");
    return li;
  }));
  $("#setup-title").textContent = s.complete ? "Setup is complete" : `Set up Hearth: step ${s.steps.indexOf(s.current) + 1} of ${s.steps.length}`;
  for (const f of document.querySelectorAll("form.step")) f.hidden = f.id !== `step-${shown}`;
  // Pre-fill with the current answers, so going through a step again is easy.
  $("#sn-name").value = s.server_name;
  // Until the step is done, the recommended answer; afterwards the one in force.
  const policy = s.done.includes("registration") ? s.registration : "invite";
  for (const r of $("#step-registration").policy) r.checked = r.value === policy;
  if (s.reach) for (const r of $("#step-reach").mode) r.checked = r.value === s.reach.mode;
  const chosenCa = s.https?.url ?? s.acme_directories[0].url;
  $("#https-cas").replaceChildren(el("legend", {}, "Certificate authority"), ...s.acme_directories.map((d) =>
    el("label", { class: "check" }, el("input", { type: "radio", name: "acme_url", value: d.url, ...(d.url === chosenCa ? { checked: "" } : {}) }), ` ${d.name}`)));
  if (s.https) {
    $("#https-host").value = s.https.host;
    $("#https-port").value = s.https.port;
    $("#http-port").value = s.https.http_port;
  }
  $("#done-address").textContent = s.public_baseurl;
  $("#done-qr").src = `data:image/svg+xml;base64,${btoa(s.address_qr_svg)}`;
  $("#done-qr").alt = `QR code of the homeserver address ${s.public_baseurl}`;
  for (const e of document.querySelectorAll(".sn-example")) e.textContent = s.server_name;
  showWhen($("#step-reach"), "mode");
  showWhen($("#step-registration"), "policy");
  $("#reach-result").hidden = true;
  $("#step-reach").querySelector("button[type=submit]").hidden = false;
  $(`#step-${shown} h3`)?.focus();
};

/// Shows the parts of `form` marked data-when="<value>" for the chosen radio of `name`.
function showWhen(form, name) {
  const chosen = form[name].value;
  for (const e of form.querySelectorAll("[data-when]")) e.hidden = e.dataset.when !== chosen;
}

/// Sends a change; when the server restarts to apply it, waits for the restarted server.
async function change(path, opts) {
  const before = (await api("/status")).started_ms;
  const r = await api(path, opts);
  if (r.restart) {
    say("Saved. Hearth is restarting to apply it…", "ok");
    await waitForRestart(before);
  }
  return r;
}

async function doStep(step, body, form) {
  const button = form.querySelector("button[type=submit]");
  const label = button.textContent;
  button.disabled = true;
  form.setAttribute("aria-busy", "true");
  if (step === "check") {
    // The slowest step: it waits on DNS and on every address it tries.
    button.textContent = "Checking…";
    say("Hearth is contacting itself the way apps and other servers would. This can take up to half a minute.", "ok");
  }
  try {
    const r = await change(`/setup/${step}`, { method: "POST", body });
    say("");
    return r;
  } finally {
    button.disabled = false;
    button.textContent = label;
    form.removeAttribute("aria-busy");
  }
}

function stepForm(step, body, after) {
  const form = $(`#step-${step}`);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    run(async () => {
      const payload = body(form);
      if (payload === null) return;
      const r = await doStep(step, payload, form);
      if (after && (await after(r, form)) === false) return;
      await views.setup();
    });
  });
}

views.settings = async () => {
  const s = await api("/settings");
  const f = $("#settings-form");
  for (const r of f.registration) r.checked = r.value === s.registration;
  f.url.value = s.public_baseurl;
  f.admin_email.value = s.admin_email || "";
  f.support_page.value = s.support_page || "";
  $("#open-warning").hidden = s.registration !== "open";
  $("#confirm-open").checked = s.registration === "open";
};

/// After a change the server restarts on the same address: wait until a server started after
/// `before` (a status's started_ms) answers.
async function waitForRestart(before) {
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    try {
      const s = await api("/status");
      if (s.started_ms !== before) return;
    } catch {
      // Stopping or starting: not back yet.
    }
  }
  throw new Error("The server did not come back within a minute: look at the Logs, or restart Hearth.");
}

const roomLabel = (r) => r.name || r.canonical_alias || r.room_id;

views.rooms = async () => {
  const { rooms } = await api("/rooms");
  $("#room-members").hidden = true;
  $("#rooms-body").replaceChildren(...(rooms.length ? rooms.map((r) => el("tr", {},
    el("td", {}, roomLabel(r)),
    el("td", {}, String(r.num_joined_members)),
    el("td", {}, r.encryption ? "Yes" : "No"),
    el("td", {}, r.creator),
    el("td", { class: "actions" },
      el("button", { type: "button", onclick: () => showMembers(r) }, "Members"),
      el("button", { type: "button", class: "danger", onclick: () => deleteRoom(r) }, "Delete")),
  )) : [el("tr", {}, el("td", { colspan: "5" }, "No rooms yet."))]));
};

function deleteRoom(room) {
  const label = roomLabel(room);
  if (!confirm(`Delete ${label}? Everyone here is taken out of it and its messages are deleted from this server. People on other servers keep their copy. This cannot be undone.`)) return;
  run(async () => {
    await api(`/rooms/${encodeURIComponent(room.room_id)}`, { method: "DELETE" });
    await views.rooms();
  }, `${label} is deleted.`);
}

/// A moment as people say it: the time today, else the date and time.
function when(ms) {
  const d = new Date(ms);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : d.toLocaleString();
}

views.servers = async () => {
  const { destinations } = await api("/federation/destinations");
  $("#servers-body").replaceChildren(...(destinations.length ? destinations.map((d) => {
    let state;
    if (d.backing_off && d.retry_at) state = `Not answering; trying again at ${when(d.retry_at)}`;
    else if (d.last_error) state = "Not answering; trying again now";
    else if (d.last_success_ts) state = "Up";
    else state = "Not contacted yet";
    const stateCell = el("td", {}, state);
    if (d.last_error) stateCell.append(el("br"), el("small", {}, `Last error: ${d.last_error}`));
    return el("tr", {},
      el("td", {}, d.destination),
      stateCell,
      el("td", {}, d.queued ? `${d.queued} event${d.queued === 1 ? "" : "s"}` : "Nothing"),
      el("td", {}, d.last_success_ts ? when(d.last_success_ts) : "Never"));
  }) : [el("tr", {}, el("td", { colspan: "4" }, "No other servers yet: no one here shares a room with people elsewhere."))]));
};

function showMembers(room) {
  run(async () => {
    const { members } = await api(`/rooms/${encodeURIComponent(room.room_id)}/members`);
    const words = { join: "joined", invite: "invited", leave: "left", ban: "banned", knock: "asked to join" };
    $("#room-members-title").textContent = `Members of ${roomLabel(room)}`;
    $("#room-members-list").replaceChildren(...members.map((m) =>
      el("li", {}, `${m.displayname ? `${m.displayname} (${m.user_id})` : m.user_id}: ${words[m.membership] || m.membership}`)));
    $("#room-members").hidden = false;
    $("#room-members-title").focus();
  });
}

views.logs = async () => {
  const level = $("#logs-level").value;
  const r = await api(`/logs?level=${level}&limit=500`);
  $("#logs-dir").textContent = r.dir ? `Log files are in ${r.dir}` : "This server writes no log files.";
  $("#logs-text").textContent = r.lines.length ? r.lines.map((l) => l.text).join("\n") : "Nothing at this level.";
};

/// The last check's outcome in a few words, with a button to check again.
function reachability(r) {
  const again = el("button", { type: "button", class: "link", onclick: (e) => run(async () => {
    e.target.disabled = true;
    e.target.textContent = "Checking… (up to half a minute)";
    await api("/setup/check", { method: "POST", body: {} });
    await views.status();
  }) }, r.checks ? "Check again" : "Check now");
  if (!r.checks) return el("span", {}, "Not checked yet. ", again);
  const failing = r.checks.filter((c) => c.result === "fail");
  const when = new Date(r.checked_ms).toLocaleString();
  const summary = failing.length
    ? `${failing.length} of ${r.checks.length} checks need attention: ${failing.map((c) => c.name).join("; ")}. See Setup → Check for what to do.`
    : `Every check passed (${r.checks.filter((c) => c.result === "pass").length} passed, the rest do not apply).`;
  return el("span", {}, `${summary} Checked ${when}. `, again);
}

async function run(action, done) {
  try {
    await action();
    if (done) say(done, "ok");
  } catch (e) {
    say(e.message);
  }
}

function resetPassword(userId) {
  const password = prompt(`New password for ${userId} (at least 8 characters). They will be signed out everywhere.`);
  if (!password) return;
  run(async () => { await api(`/users/${encodeURIComponent(userId)}/password`, { method: "POST", body: { password } }); }, `Password of ${userId} changed.`);
}

function setAdmin(userId, admin) {
  run(async () => { await api(`/users/${encodeURIComponent(userId)}/admin`, { method: "PUT", body: { admin } }); await views.users(); });
}

function deactivate(userId) {
  if (!confirm(`Deactivate ${userId}? They can never sign in again. This cannot be undone.`)) return;
  run(async () => { await api(`/users/${encodeURIComponent(userId)}/deactivate`, { method: "POST" }); await views.users(); }, `${userId} is deactivated.`);
}

function removeInvite(code) {
  run(async () => { await api(`/invites/${encodeURIComponent(code)}`, { method: "DELETE" }); await views.invites(); });
}

async function copy(text, done = "Link copied.") {
  try {
    await navigator.clipboard.writeText(text);
    say(done, "ok");
  } catch {
    say("Copying is not allowed here: select the text and copy it yourself.");
  }
}

function show(name) {
  for (const s of document.querySelectorAll("main > section")) s.hidden = true;
  for (const a of document.querySelectorAll("nav a")) a.removeAttribute("aria-current");
  if (name === "login") {
    $("#login").hidden = false;
    return;
  }
  $(`#view-${name}`).hidden = false;
  document.querySelector(`nav a[data-view="${name}"]`)?.setAttribute("aria-current", "page");
  run(views[name]);
}

async function route() {
  if (!token) return show("login");
  let name = location.hash.slice(1);
  if (!(name in views)) {
    // First visit: the wizard until setup is complete, the status page afterwards.
    try {
      name = (await api("/setup")).complete ? "status" : "setup";
    } catch (e) {
      say(e.message);
      return;
    }
  }
  show(name);
}

$("#login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("#login-token").value.trim();
  sessionStorage.setItem("hearth-admin-token", token);
  say("");
  location.hash = "#status";
  route();
});

$("#user-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const f = e.target;
  const body = { username: f.username.value.trim(), password: f.password.value, admin: f.admin.checked };
  run(async () => {
    const r = await api("/users", { method: "POST", body });
    f.reset();
    await views.users();
    say(`${r.user_id} can now sign in.`, "ok");
  });
});

$("#invite-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const f = e.target;
  const body = { uses_allowed: Number(f.uses.value), expiry_time: Date.now() + Number(f.days.value) * 86400000 };
  run(async () => {
    await api("/invites", { method: "POST", body });
    await views.invites();
    say("Invite created: copy its link and send it.", "ok");
  });
});

$("#proxy-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const f = e.target;
  run(async () => {
    const r = await api("/reverse-proxy", { method: "POST", body: { kind: f.kind.value, public_host: f.host.value.trim() } });
    $("#proxy-steps").replaceChildren(...r.steps.map((s) => el("li", {}, s)));
    $("#proxy-path").textContent = r.path;
    $("#proxy-text").value = r.text;
    $("#proxy-result").hidden = false;
    say("");
  });
});
$("#proxy-copy").addEventListener("click", () => copy($("#proxy-text").value, "Configuration copied."));

/// The TURN form's request: the same for writing the configuration and for applying it.
function turnBody(apply) {
  const f = $("#turn-form");
  const body = { host: f.host.value.trim(), apply };
  if (f.external_ip.value.trim()) body.external_ip = f.external_ip.value.trim();
  if (f.private_ip.value.trim()) body.private_ip = f.private_ip.value.trim();
  return body;
}
$("#turn-form").addEventListener("submit", (e) => {
  e.preventDefault();
  run(async () => {
    const r = await api("/turn", { method: "POST", body: turnBody(false) });
    $("#turn-steps").replaceChildren(...r.steps.map((s) => el("li", {}, s)));
    $("#turn-path").textContent = r.path;
    $("#turn-text").value = r.text;
    $("#turn-result").hidden = false;
    say("");
  });
});
$("#turn-copy").addEventListener("click", () => copy($("#turn-text").value, "Configuration copied."));
$("#turn-apply").addEventListener("click", () => run(async () => {
  await change("/turn", { method: "POST", body: turnBody(true) });
  await views.reach();
  say("Calls now use this TURN server.", "ok");
}));

stepForm("welcome", () => ({}));
stepForm("reach", (f) => (f.mode.value === "https"
  ? { mode: "https", public_host: f.https_host.value.trim(), https_port: Number(f.https_port.value), http_port: Number(f.http_port.value), acme_url: f.acme_url.value }
  : { mode: f.mode.value, public_url: f.public_url.value.trim(), public_host: f.public_host.value.trim() }), (r, f) => {
  const box = $("#reach-result");
  const proceed = el("button", { type: "button", onclick: () => {
    box.hidden = true;
    f.querySelector("button[type=submit]").hidden = false;
    run(views.setup);
  } }, "Continue");
  if (r.https) {
    box.replaceChildren(httpsProgress(r.https), proceed);
  } else if (f.mode.value === "proxy") {
    // The web server's configuration, written here rather than on another page.
    box.replaceChildren(proxyWriter(f.public_host.value.trim()), proceed);
  } else if (r.local_target) {
    box.replaceChildren(el("p", {}, `Point your tunnel at ${r.local_target}. For example:`),
      el("pre", {}, Object.values(r.commands).join("\n")), proceed);
  } else if (r.warning) {
    box.replaceChildren(el("p", {}, r.warning), proceed);
  } else {
    return true;
  }
  // Say what the user must do next before moving on (with Continue, not the form's own button).
  box.hidden = false;
  f.querySelector("button[type=submit]").hidden = true;
  return false;
});

/// The wizard's built-in HTTPS, after the answer is saved: what the DNS and the router need,
/// those checked from here, and the certificate as it comes (GET /tls, every two seconds while
/// shown).
function httpsProgress(h) {
  const checks = el("ul", { id: "https-checks", class: "checks", "aria-live": "polite" });
  const cert = el("p", { id: "https-cert", role: "status" }, "Starting…");
  const forward = (outside, here) => outside === here ? `port ${outside} to this computer` : `port ${outside} to this computer's port ${here}`;
  const again = el("button", { type: "button", id: "https-again", onclick: () => run(() => checkHttps(checks, again)) }, "Check again");
  const out = el("div", {},
    el("h4", {}, "What your domain and router need"),
    el("ol", {},
      el("li", {}, `A DNS record named ${h.host} (type A, or AAAA for IPv6) holding your home's public address. Your domain's provider has a page for DNS records; your router's status page shows the address.`),
      el("li", {}, `On the router, forward ${forward(80, h.http_port)}: the certificate authority checks there, and people who type the address without https:// are sent on. Forward ${forward(443, h.port)}: apps and other Matrix servers connect there.`),
      el("li", {}, "Nothing is needed for port 8448: Hearth tells other Matrix servers to use port 443. If the server name (next step) is another domain, the check step says what its web site must serve.")),
    el("h4", {}, "Certificate"), cert, checks, again);
  let issued = false;
  const poll = async () => {
    if (!cert.isConnected) return;
    try {
      const t = await api("/tls");
      showCertificate(cert, t);
      // The checks said "stand-in" until now: once more, with the certificate apps will see.
      if (!issued && t.certificate && !t.certificate.placeholder) {
        issued = true;
        run(() => checkHttps(checks, again));
      }
    } catch {
      // Restarting: the next round tells.
    }
    setTimeout(poll, 2000);
  };
  setTimeout(() => { poll(); run(() => checkHttps(checks, again)); });
  return out;
}

function showCertificate(p, t) {
  const c = t.certificate;
  if (!c) {
    p.textContent = "Hearth is starting its HTTPS listener…";
  } else if (!c.placeholder) {
    p.textContent = `Done: a certificate for ${c.names.join(", ")}, valid until ${new Date(c.not_after_ms).toLocaleDateString()}. Hearth renews it by itself.`;
    p.className = "ok";
  } else if (t.acme?.last_error) {
    const again = t.acme.next_attempt_ms ? ` Hearth tries again at ${when(t.acme.next_attempt_ms)}, or when the checks below all pass.` : "";
    p.textContent = `Not yet: ${t.acme.last_error}.${again}`;
    p.className = "warning";
  } else {
    p.textContent = "Asking the certificate authority for a certificate…";
    p.className = "";
  }
}

async function checkHttps(list, button) {
  button.disabled = true;
  button.textContent = "Checking…";
  try {
    const r = await api("/tls/check", { method: "POST", body: {} });
    list.replaceChildren(...checkItems(r.checks));
    if (r.trying_now) say("Everything checks out: Hearth is asking for the certificate now.", "ok");
  } finally {
    button.disabled = false;
    button.textContent = "Check again";
  }
}

/// The setup's check results as list items: verdict, what was found, what to do.
function checkItems(checks) {
  const words = { pass: "Works", fail: "Needs attention", skipped: "Not checked" };
  return checks.map((c) => el("li", { class: `check-${c.result}` },
    el("strong", {}, `${words[c.result]}: ${c.name}`), el("br"), c.detail,
    ...(c.fix ? [el("br"), `What to do: ${c.fix}`] : [])));
}

/// A small form that writes the reverse-proxy configuration for `host` (the Reach page's, inline).
function proxyWriter(host) {
  const out = el("div", {});
  const select = el("select", { id: "wizard-proxy-kind" },
    ...[["caddy", "Caddy (gets certificates by itself)"], ["nginx", "nginx"], ["apache", "Apache"], ["haproxy", "HAProxy"], ["relayd", "relayd (OpenBSD)"]]
      .map(([value, label]) => el("option", { value }, label)));
  const write = el("button", { type: "button", onclick: () => run(async () => {
    const r = await api("/reverse-proxy", { method: "POST", body: { kind: select.value, public_host: host } });
    const text = el("textarea", { id: "wizard-proxy-text", readonly: "", rows: "14", spellcheck: "false" });
    text.value = r.text;
    out.replaceChildren(el("ol", {}, ...r.steps.map((step) => el("li", {}, step))),
      el("label", { for: "wizard-proxy-text" }, `Configuration for ${r.path}`), text,
      el("button", { type: "button", onclick: () => copy(r.text, "Configuration copied.") }, "Copy configuration"));
    say("");
  }) }, "Write the configuration");
  return el("div", {},
    el("p", {}, `Apps will connect to https://${host}/. A web server on this computer answers there and passes Matrix traffic on to Hearth. Which one do you use?`),
    el("label", { for: "wizard-proxy-kind" }, "Web server"), select, write, out);
}

stepForm("server_name", (f) => ({ server_name: f.server_name.value.trim(), confirm: f.confirm.checked }));
stepForm("admin", (f) => {
  if (f.password.value !== f.password2.value) {
    say("The two passwords are different. Type the same password twice.");
    return null;
  }
  return { username: f.username.value.trim(), password: f.password.value };
}, (r) => { say(`Your account ${r.user_id} is ready.`, "ok"); return true; });
stepForm("registration", (f) => ({ policy: f.policy.value, confirm_open_registration: f.confirm_open.checked }));
stepForm("check", () => ({}), (r) => {
  $("#check-results").replaceChildren(...checkItems(r.checks));
  $("#check-next").hidden = false;
  return false;
});
$("#check-next").addEventListener("click", () => run(views.setup));
$("#servers-refresh").addEventListener("click", () => run(views.servers));

$("#tester-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = e.target.server_name.value.trim();
  if (!name) return;
  $("#tester-verdict").textContent = `Testing ${name}…`;
  $("#tester-steps").replaceChildren();
  $("#tester-certs-box").hidden = true;
  $("#tester-result").hidden = false;
  run(async () => {
    const r = await api(`/federation/test?server_name=${encodeURIComponent(name)}`);
    $("#tester-verdict").textContent = r.ok
      ? `${r.server_name} can be reached: other servers find it and trust it.`
      : `${r.server_name} cannot be reached by other servers. The step marked below says why.`;
    const words = { pass: "OK", fail: "Problem", warn: "Warning", info: "Note" };
    $("#tester-steps").replaceChildren(...r.steps.map((s) => {
      const li = el("li", { class: `check-${s.status}` }, el("strong", {}, `${s.name}: ${words[s.status] || s.status}. `), s.detail);
      if (s.fix) li.append(el("br"), el("small", {}, s.fix));
      return li;
    }));
    $("#tester-certs").replaceChildren(...r.certificates.map((c) => el("li", {},
      `${c.subject} — for ${c.names.join(", ") || "no names"}; issued by ${c.issuer}; valid ${c.not_before} to ${c.not_after}${c.expired ? " (expired)" : ""}`)));
    $("#tester-certs-box").hidden = r.certificates.length === 0;
  });
});
stepForm("done", () => ({}), () => { location.hash = "#status"; return false; });

$("#restore-open").addEventListener("click", () => { restoring = true; run(views.setup); });
$("#restore-cancel").addEventListener("click", () => { restoring = false; say(""); run(views.setup); });
$("#restore-look").addEventListener("click", () => run(lookForBackups));
$("#restore-path").addEventListener("keydown", (e) => {
  if (e.key === "Enter") { e.preventDefault(); run(lookForBackups); }
});
$("#restore-found").addEventListener("change", chosenBackup);

/// Lists the backups at the path typed, newest first and chosen.
async function lookForBackups() {
  const path = $("#restore-path").value.trim();
  const box = $("#restore-found");
  box.hidden = true;
  chosenBackup();
  if (!path) throw new Error("Type the whole path of the folder first, like /media/usb/hearth-backups.");
  const { backups } = await api(`/restore?path=${encodeURIComponent(path)}`);
  if (!backups.length) throw new Error(`There is no Hearth backup in ${path}.`);
  say("");
  box.replaceChildren(el("legend", {}, backups.length === 1 ? "Backup found" : `${backups.length} backups found, newest first`),
    ...backups.map((b, i) => el("label", { class: "check" },
      el("input", { type: "radio", name: "backup", value: b.path, ...(b.encrypted ? { "data-encrypted": "yes" } : {}),
        ...(i === backups.findIndex((x) => !x.too_new) ? { checked: "" } : {}), ...(b.too_new ? { disabled: "" } : {}) }),
      ` ${b.server_name}, made ${when(b.created_ms)}${b.hearth_version ? ` by Hearth ${b.hearth_version}` : ""}${b.encrypted ? " (encrypted)" : ""}${b.too_new ? ": made by a newer Hearth, update this one first" : ""}`)));
  box.hidden = false;
  chosenBackup();
}

function chosenBackup() {
  const chosen = $("#step-restore").querySelector("input[name=backup]:checked");
  $("#restore-secret").hidden = !chosen?.dataset.encrypted;
  $("#restore-go").disabled = !chosen || $("#restore-found").hidden;
}

$("#step-restore").addEventListener("submit", (e) => {
  e.preventDefault();
  const form = e.target;
  const chosen = form.querySelector("input[name=backup]:checked");
  if (!chosen) return;
  const button = $("#restore-go");
  run(async () => {
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    say("Checking every file of the backup, then restoring it. This takes a moment for a large one.", "ok");
    try {
      await change("/restore", { method: "POST", body: { path: chosen.value, passphrase: chosen.dataset.encrypted ? form.passphrase.value : "" } });
    } finally {
      button.disabled = false;
      form.removeAttribute("aria-busy");
    }
    restoring = false;
    form.passphrase.value = "";
    const { last } = await api("/restore");
    if (!last?.ok) throw new Error(`The backup was not restored: ${last?.error ?? "the server did not say why"}. This new server is as it was.`);
    location.hash = "#status";
    say(`Restored ${last.server_name} from the backup made ${when(last.created_ms)}, with ${last.media} media file${last.media === 1 ? "" : "s"}. Everyone signs in with their password as before.`, "ok");
  });
});
$("#done-copy").addEventListener("click", () => copy($("#done-address").textContent, "Address copied."));
$("#step-reach").addEventListener("change", (e) => {
  showWhen($("#step-reach"), "mode");
  // Another answer: its own result comes after saving it.
  if (e.target.name === "mode") {
    $("#reach-result").hidden = true;
    $("#step-reach").querySelector("button[type=submit]").hidden = false;
  }
});
$("#step-registration").addEventListener("change", () => showWhen($("#step-registration"), "policy"));

$("#settings-form").addEventListener("change", (e) => {
  if (e.target.name === "registration") $("#open-warning").hidden = e.target.value !== "open";
});

$("#settings-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const f = e.target;
  const body = {
    registration: f.registration.value,
    public_baseurl: f.url.value.trim(),
    admin_email: f.admin_email.value.trim(),
    support_page: f.support_page.value.trim(),
    confirm_open_registration: $("#confirm-open").checked,
  };
  const button = f.querySelector("button[type=submit]");
  button.disabled = true;
  button.textContent = "Restarting…";
  run(async () => {
    try {
      await change("/settings", { method: "PUT", body });
      await views.settings();
      say("Saved and applied.", "ok");
    } finally {
      button.disabled = false;
      button.textContent = "Save and restart";
    }
  });
});

$("#rotate-key").addEventListener("click", () => {
  run(async () => {
    const { token: fresh } = await api("/admin-key", { method: "POST" });
    token = fresh;
    sessionStorage.setItem("hearth-admin-token", fresh);
    $("#new-key-link").value = `${location.origin}${location.pathname}#token=${fresh}`;
    $("#new-key").hidden = false;
    say("The admin key was replaced; the old link no longer works.", "ok");
  });
});

$("#logs-form").addEventListener("submit", (e) => {
  e.preventDefault();
  run(views.logs);
});
$("#logs-copy").addEventListener("click", () => copy($("#logs-text").textContent, "Log lines copied."));

window.addEventListener("hashchange", route);
route();
