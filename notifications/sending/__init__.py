"""Sending: a Send becomes delivery rows, the rows go out in batches, results come back.

Each module imports only the ones below it, and notifications' own domain modules (rendering,
tracking, deactivation), the providers and the models; notifications.services drives them.

    fanout      a send's audience becomes one delivery row per (customer, device) in set-based
                SQL; consent, caps, quiet hours and TTL make rows skipped with their reason
    batch_send  one claimed batch: render each delivery, call the provider, record the results
    recording   results written under the claim's fence; dead tokens deactivate their device
    outage      a provider that fails most of a chunk is down: its batches wait for it
    batches     batch rows claimed by one worker at a time: lease, fencing, release, finish"""
