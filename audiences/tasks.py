from celery import shared_task


@shared_task(acks_late=True)
def stage_rules_apply_inactivity() -> int:
    from audiences.stages import stage_rules_apply_inactivity

    return stage_rules_apply_inactivity()
