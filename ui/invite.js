// The invite sign-up page: checks the invite, creates the account through Hearth's invite
// endpoint, then explains how to sign in with Element (Element X cannot create accounts).

const $ = (sel) => document.querySelector(sel);
const code = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
const base = `/_hearth/invite/${encodeURIComponent(code)}`;

function say(text) {
  const box = $("#message");
  box.textContent = text;
  box.className = "message error";
  box.hidden = !text;
}

const problems = {
  used_up: "This invite has been used up. Ask the person who sent it for a new one.",
  expired: "This invite has expired. Ask the person who sent it for a new one.",
  unknown: "This invite does not exist. Check that you opened the whole link, or ask for a new one.",
};

let serverName = "";

async function check() {
  try {
    const res = await fetch(`${base}/state`);
    const data = await res.json();
    $("#checking").hidden = true;
    if (data.state !== "valid") {
      say(problems[data.state] || "This invite cannot be used.");
      return;
    }
    serverName = data.server_name;
    $("#server-name").textContent = data.server_name;
    $("#signup").hidden = false;
    $("#username").focus();
  } catch {
    $("#checking").hidden = true;
    say("The server could not be reached. Check your connection and reload the page.");
  }
}

$("#username").addEventListener("input", (e) => {
  $("#preview-id").textContent = `@${e.target.value.trim() || "name"}:${serverName}`;
});

$("#signup").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  if (f.password.value !== f.password2.value) {
    say("The two passwords are different. Type the same password twice.");
    f.password2.focus();
    return;
  }
  const button = f.querySelector("button");
  button.disabled = true;
  button.textContent = "Creating your account…";
  try {
    const res = await fetch(`${base}/register`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: f.username.value.trim(), password: f.password.value }),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      const hint = data.errcode === "M_USER_IN_USE" ? " Choose another username." : "";
      throw new Error((data.error || `The server answered ${res.status}.`) + hint);
    }
    say("");
    f.hidden = true;
    $("#done-user").textContent = data.user_id;
    for (const s of document.querySelectorAll(".hs-url")) s.textContent = data.homeserver_url;
    $("#done").hidden = false;
    $("#done-title").focus();
  } catch (err) {
    say(err.message);
    button.disabled = false;
    button.textContent = "Create my account";
  }
});

check();
