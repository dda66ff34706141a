from celery import shared_task


@shared_task(acks_late=True)
def rollups_refresh() -> int | None:
    from analytics.rollups import rollups_refresh

    return rollups_refresh()
