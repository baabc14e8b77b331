// The installed app's service worker: the page and its files from the network when the server
// answers (so an update shows at once), from this cache when it does not; the page then says the
// server cannot be reached. The API (/v1/...) is never cached: alerts are only ever live.

const CACHE = "hearai-page";
const PAGE = ["/", "/static/app.js", "/static/sounds.js", "/static/background.js", "/static/capture.js",
  "/static/style.css", "/static/manifest.webmanifest", "/static/icon.svg", "/static/icon-192.png",
  "/static/icon-512.png"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(PAGE)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin || url.pathname.startsWith("/v1/")) return;
  event.respondWith(fromNetworkElseCache(event.request, url.pathname === "/" ? "/" : event.request));
});

async function fromNetworkElseCache(request, key) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(key, response.clone());
    return response;
  } catch (offline) {
    const kept = await cache.match(key);
    if (kept) return kept;
    throw offline;
  }
}

// A notification pressed: bring the page to the front (or open it).
self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(self.clients.matchAll({ type: "window" }).then((open) =>
    open.length ? open[0].focus() : self.clients.openWindow("/")));
});
