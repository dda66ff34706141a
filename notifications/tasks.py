from celery import shared_task


@shared_task(acks_late=True)
def send_fan_out(send_id: int) -> None:
    from notifications.services import send_fan_out

    send_fan_out(send_id=send_id)


@shared_task(acks_late=True)
def delivery_batch_send(batch_id: int) -> None:
    from notifications.sending import batch_send

    batch_send(batch_id=batch_id)


@shared_task(acks_late=True)
def deliveries_sweep() -> dict:
    from notifications.services import deliveries_sweep

    return deliveries_sweep()
