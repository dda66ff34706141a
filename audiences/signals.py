"""Signals audiences sends so that upper apps (campaigns, analytics) can react without being
imported here. Receivers of event_tracked and stage_changed should enqueue work with
transaction.on_commit, not do it inline; customer_merging and customer_erasing are the
exception: their receivers' writes belong to the merge's or the erasure's transaction."""

from django.dispatch import Signal

# sender=Event class; kwargs: event_id, customer_id, name
event_tracked = Signal()

# sender=Customer class; kwargs: customer_id, from_stage, to_stage, cause, transition_id
stage_changed = Signal()

# Sent inside the merge transaction, before audiences moves its own rows. Receivers move their
# rows of the anonymous customer to the known one with set-based statements (minding their
# unique constraints) and return {"what": how many}, which the merge records.
# sender=Customer class; kwargs: anonymous_id, customer_id (primary keys)
customer_merging = Signal()

# Sent inside the erasure transaction, before audiences removes its own rows and the customer.
# Receivers remove or anonymise their rows of the customer, set-based, keeping what reports
# count, and return {"what": how many}, which the erasure records.
# sender=Customer class; kwargs: customer_id, erasure_id (audiences.CustomerErasure)
customer_erasing = Signal()
