// A web app's service worker for JourneyHub's Web Push messages. The payload is
// {"title", "body", "image", "url", "tag", "data"}: the tag is the delivery's collapse
// identity, so a message that reached the browser twice (sent again after a worker crash)
// replaces its first copy instead of showing twice. Serve it from your site's root and
// register it with navigator.serviceWorker.register("/service-worker.js").

self.addEventListener("push", (event) => {
  const message = event.data ? event.data.json() : {};
  const options = {
    body: message.body || "",
    data: { url: message.url || "", ...(message.data || {}) },
    tag: message.tag || undefined,
    renotify: false, // a replaced copy does not alert again
  };
  if (message.image) {
    options.image = message.image;
  }
  event.waitUntil(self.registration.showNotification(message.title || "", options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = event.notification.data && event.notification.data.url;
  if (url) {
    event.waitUntil(self.clients.openWindow(url));
  }
});
