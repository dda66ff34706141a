// A web app's service worker for JourneyHub's Web Push messages. The payload is
// {"title", "body", "image", "url", "tag", "data"} and, when the template has them, "actions"
// ([{"action", "title", "url"}], at most three), "badge_count" and "badge_increment",
// "require_interaction" and "silent". The tag is the delivery's collapse identity, so a
// message that reached the browser twice (sent again after a worker crash) replaces its first
// copy instead of showing twice. A silent push is {"kind": "silent", "tag", "data"}: nothing
// is shown; the open pages get the data. Serve this file from your site's root and register it
// with navigator.serviceWorker.register("/service-worker.js").
//
// Opens: a click posts {"type": "journeyhub-opened", "jh_token", "action_id"} to the site's
// open pages (and to the page it opens), which report it with the customer's token:
// POST /api/v1/me/deliveries/opened/ {"token": jh_token, "action_id": action_id}.

self.addEventListener("push", (event) => {
  const message = event.data ? event.data.json() : {};
  if (message.kind === "silent") {
    event.waitUntil(tellPages({ type: "journeyhub-data", data: message.data || {} }));
    return;
  }
  const actions = message.actions || [];
  const options = {
    body: message.body || "",
    data: {
      url: message.url || "",
      actions: Object.fromEntries(actions.map((a) => [a.action, a.url || ""])),
      ...(message.data || {}),
    },
    tag: message.tag || undefined,
    renotify: false, // a replaced copy does not alert again
    actions: actions.map((a) => ({ action: a.action, title: a.title })),
    requireInteraction: Boolean(message.require_interaction),
    silent: Boolean(message.silent),
  };
  if (message.image) {
    options.image = message.image;
  }
  const shown = [self.registration.showNotification(message.title || "", options)];
  if (message.badge_count !== undefined && self.navigator.setAppBadge) {
    shown.push(setBadge(message.badge_count, message.badge_increment));
  }
  event.waitUntil(Promise.all(shown));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  const url = (event.action && data.actions && data.actions[event.action]) || data.url;
  const opened = { type: "journeyhub-opened", jh_token: data.jh_token || "",
                   action_id: event.action || "" };
  event.waitUntil((async () => {
    if (url) {
      const client = await self.clients.openWindow(url);
      if (client) {
        client.postMessage(opened);
      }
    }
    await tellPages(opened);
  })());
});

async function tellPages(message) {
  const pages = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  pages.forEach((page) => page.postMessage(message));
}

// The Badging API keeps no count we can read: an increment adds to the one kept here.
let badge = 0;

async function setBadge(count, increment) {
  badge = increment ? badge + count : count;
  await self.navigator.setAppBadge(badge);
}
