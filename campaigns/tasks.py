"""Thin Celery wrappers: ids in, one engine or service call."""

from celery import shared_task


@shared_task(acks_late=True)
def journeys_tick() -> int:
    from campaigns.engine import journeys_tick

    return journeys_tick()


@shared_task(acks_late=True)
def event_process(event_id: int) -> None:
    from campaigns.engine import event_process

    event_process(event_id=event_id)


@shared_task(acks_late=True)
def stage_process(customer_id: int, to_stage: str) -> None:
    from campaigns.engine import stage_process

    stage_process(customer_id=customer_id, to_stage=to_stage)


@shared_task(acks_late=True)
def segment_entries_process() -> int:
    from campaigns.engine import segment_entries_process

    return segment_entries_process()


@shared_task(acks_late=True)
def campaign_run(campaign_id: int) -> int:
    from campaigns.services import campaign_run

    return campaign_run(campaign_id=campaign_id)
