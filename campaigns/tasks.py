"""Thin Celery wrappers: ids in, one service or engine call.

campaigns.services imports this module to enqueue, so a task imports its service in its body
(the one circle the layers accept); the engine never imports tasks and is imported at the top."""

from celery import shared_task

from campaigns.engine import entry


@shared_task(acks_late=True)
def journeys_tick() -> int:
    from campaigns.services import journeys_tick

    return journeys_tick()


@shared_task(acks_late=True)
def event_process(event_id: int) -> None:
    entry.event_process(event_id=event_id)


@shared_task(acks_late=True)
def stage_process(customer_id: int, to_stage: str) -> None:
    entry.stage_process(customer_id=customer_id, to_stage=to_stage)


@shared_task(acks_late=True)
def segment_entries_process() -> int:
    from campaigns.services import segment_entries_process

    return segment_entries_process()


@shared_task(acks_late=True)
def campaign_run(campaign_id: int) -> int:
    from campaigns.services import campaign_run

    return campaign_run(campaign_id=campaign_id)
