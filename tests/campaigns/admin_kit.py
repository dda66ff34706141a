"""The campaign admin page's form data, shared by the admin and the roles tests."""


def campaign_form(**overrides) -> dict:
    """The campaign page's POST data: sensible defaults, then ``overrides``."""
    data = {
        "name": "Welcome journey", "description": "", "kind": "journey", "stage": "",
        "segment": "", "send_at_0": "", "send_at_1": "", "crontab": "",
        "crontab_time_zone": "UTC", "trigger": "event", "trigger_event_name": "signed_up",
        "trigger_event_filter": "{}", "trigger_stage": "", "trigger_segment": "",
        "reentry": "once", "reentry_cooldown": "", "starts_at_0": "", "starts_at_1": "",
        "ends_at_0": "", "ends_at_1": "", "max_enrollments": "", "goal_event_name": "",
        "goal_event_filter": "{}", "goal_window": "7 days", "goal_revenue_property": "",
        "holdout_percent": "0", "throttle_per_minute": "", "respect_quiet_hours": "on",
        "message_expires_at_0": "", "message_expires_at_1": "",
        "steps-TOTAL_FORMS": "0", "steps-INITIAL_FORMS": "0", "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
    }
    return {**data, **overrides}
