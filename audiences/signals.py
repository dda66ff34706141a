"""Signals audiences sends so that upper apps (campaigns, analytics) can react without being
imported here. Receivers should enqueue work with transaction.on_commit, not do it inline."""

from django.dispatch import Signal

# sender=Event class; kwargs: event_id, customer_id, name
event_tracked = Signal()

# sender=Customer class; kwargs: customer_id, from_stage, to_stage, cause, transition_id
stage_changed = Signal()
