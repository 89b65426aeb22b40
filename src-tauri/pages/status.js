// Shows the state the desktop app put in the fragment; updated when it changes.
function show() {
  const hash = decodeURIComponent(location.hash.slice(1));
  const title = document.getElementById("title");
  const detail = document.getElementById("detail");
  if (hash.startsWith("failed=")) {
    title.textContent = "Hearth could not start";
    detail.textContent = hash.slice("failed=".length) +
      " When that is fixed, choose “Resume server” in the Hearth menu (the tray icon).";
  } else if (hash === "paused") {
    title.textContent = "Hearth is paused";
    detail.textContent = "Nobody can send or receive messages through this server until you choose " +
      "“Resume server” in the Hearth menu (the tray icon).";
  } else if (hash === "stopping") {
    title.textContent = "Hearth is stopping…";
    detail.textContent = "";
  } else {
    title.textContent = "Hearth is starting…";
    detail.textContent = "";
  }
}
window.addEventListener("hashchange", show);
show();
