// What keeps alerts reaching the person when they are not looking at the page: system
// notifications while it is hidden, the screen kept on while listening, and an installed app (a
// service worker) that opens even when the server cannot be reached.

const $ = (id) => document.getElementById(id);
let wakeLock = null;
let wantWake = false;

/** Register the service worker (it caches the page, so it opens without the server). */
export async function installApp() {
  if (!("serviceWorker" in navigator)) return null;
  try {
    return await navigator.serviceWorker.register("/sw.js", { scope: "/" });
  } catch {
    return null; // a non-secure page over the network: no service worker, the page still works
  }
}

// ---- notifications ------------------------------------------------------------------------------

function canNotify() { return "Notification" in window; }

/** The notification checkbox: offered where the browser has notifications, asks once when ticked. */
export function wireNotifications() {
  const box = $("notify");
  if (!canNotify()) {
    $("notify-choice").hidden = true;
    return;
  }
  box.checked = localStorage.getItem("hearai-notify") === "true" && Notification.permission === "granted";
  box.addEventListener("change", async () => {
    if (box.checked && Notification.permission !== "granted") {
      box.checked = (await Notification.requestPermission()) === "granted";
      if (!box.checked) $("notify-note").textContent = "Notifications are blocked: allow them in the browser's site settings.";
    }
    localStorage.setItem("hearai-notify", String(box.checked));
    if (box.checked) $("notify-note").textContent = "";
  });
}

/** A system notification for an alert, only while the page is hidden (it is on screen otherwise). */
export async function notify(title, body, tag) {
  if (!canNotify() || !$("notify").checked || Notification.permission !== "granted") return;
  if (document.visibilityState !== "hidden") return;
  const options = { body, tag, renotify: true, requireInteraction: true, icon: "/static/icon-192.png",
    badge: "/static/icon-192.png" };
  const worker = await navigator.serviceWorker?.getRegistration();
  if (worker) await worker.showNotification(title, options); // phones show notifications only this way
  else new Notification(title, options);
}

// ---- the screen stays on while listening --------------------------------------------------------

async function requestWake() {
  if (!wantWake || wakeLock || document.visibilityState !== "visible") return;
  try {
    wakeLock = await navigator.wakeLock.request("screen");
    $("wake-note").textContent = "The screen stays on while listening.";
    wakeLock.addEventListener("release", () => { wakeLock = null; });
  } catch (error) {
    $("wake-note").textContent = `The screen may turn off (${error.message}): alerts then arrive as notifications.`;
  }
}

/** Keep the screen on while listening; the browser drops the lock when the page is hidden, so take it again on return. */
export function keepScreenOn(on) {
  wantWake = on && "wakeLock" in navigator;
  if (!("wakeLock" in navigator)) {
    $("wake-note").textContent = on ? "This browser cannot keep the screen on." : "";
    return;
  }
  if (wantWake) requestWake();
  else {
    wakeLock?.release();
    wakeLock = null;
    $("wake-note").textContent = "";
  }
}

document.addEventListener("visibilitychange", requestWake);
