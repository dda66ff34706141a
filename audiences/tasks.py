from celery import shared_task

from audiences import stages


@shared_task(acks_late=True)
def stage_rules_apply_inactivity() -> int:
    return stages.stage_rules_apply_inactivity()


@shared_task(acks_late=True)
def referral_converted_record(customer_id: int, transition_id: int | None) -> bool:
    from audiences.services import referral_converted_record
    return referral_converted_record(customer_id=customer_id, transition_id=transition_id)
