from celery import shared_task

from audiences import stages


@shared_task(acks_late=True)
def stage_rules_apply_inactivity() -> int:
    return stages.stage_rules_apply_inactivity()
