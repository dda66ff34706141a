from celery import shared_task

from analytics import rollups


@shared_task(acks_late=True)
def rollups_refresh() -> int | None:
    return rollups.rollups_refresh()
