"""Merging an anonymous customer (the app's, before login) into the known one."""

import pytest

from audiences.models import (
    Customer,
    CustomerMerge,
    Event,
    Segment,
    SegmentMember,
    StageTransition,
    Topic,
    TopicOptOut,
)
from audiences.services import consent_set, segment_create, segment_members_replace
from audiences.services_identity import MergedElsewhere, customer_merge
from campaigns.models import Enrollment
from tests.audiences.identity_kit import enroll, journey, person, phone, track

pytestmark = pytest.mark.django_db


def merge(anonymous: Customer, known_id: str):
    return customer_merge(external_id=known_id, anonymous_external_id=anonymous.external_id)


def test_events_devices_and_history_move_and_the_anonymous_customer_is_gone():
    anonymous, known = person("anon-1"), person("user-1")
    device = phone(anonymous, "a")
    events = track(anonymous, "screen_view", "screen_view")

    result = merge(anonymous, "user-1")

    assert not Customer.objects.filter(pk=anonymous.pk).exists()
    assert set(Event.objects.filter(customer=known).values_list("pk", flat=True)) == {
        event.pk for event in events}
    device.refresh_from_db()
    assert device.customer_id == known.pk
    assert not result.already_merged
    assert result.merge.moved["events"] == 2 and result.merge.moved["devices"] == 1


def test_the_known_customer_wins_conflicts_and_the_anonymous_fills_gaps():
    anonymous = person("anon-1", first_name="Anon", email="a@example.com", locale="pt-PT",
                       time_zone="Europe/Lisbon", attributes={"plan": "free", "city": "Porto"})
    known = person("user-1", first_name="Ana", attributes={"plan": "gold"})

    merge(anonymous, "user-1")

    known.refresh_from_db()
    assert (known.first_name, known.email) == ("Ana", "a@example.com")
    assert (known.locale, known.time_zone) == ("pt-PT", "Europe/Lisbon")
    assert known.attributes == {"plan": "gold", "city": "Porto"}


def test_opt_outs_of_either_customer_stand():
    offers = Topic.objects.get_or_create(key="offers", defaults={"name": "Offers"})[0]
    news = Topic.objects.get_or_create(key="content", defaults={"name": "Content"})[0]
    anonymous, known = person("anon-1"), person("user-1")
    consent_set(customer=anonymous, opted_out_topics=["offers", "content"], push_opt_out=True)
    consent_set(customer=known, opted_out_topics=["offers"])

    merge(anonymous, "user-1")

    known.refresh_from_db()
    assert known.push_opt_out is True
    assert set(TopicOptOut.objects.filter(customer=known).values_list("topic", flat=True)) == {
        offers.pk, news.pk}


def test_static_segment_memberships_follow_without_duplicates():
    segment = segment_create(name="Beta testers", kind=Segment.Kind.STATIC)
    other = segment_create(name="Lisbon", kind=Segment.Kind.STATIC)
    anonymous, known = person("anon-1"), person("user-1")
    segment_members_replace(segment=segment, external_ids=["anon-1", "user-1"])
    segment_members_replace(segment=other, external_ids=["anon-1"])

    merge(anonymous, "user-1")

    assert sorted(SegmentMember.objects.values_list("segment_id", "customer_id")) == sorted(
        [(segment.pk, known.pk), (other.pk, known.pk)])


def test_a_known_customer_that_does_not_exist_yet_is_created():
    anonymous = person("anon-1", first_name="Rui")
    track(anonymous, "screen_view")

    merge(anonymous, "user-new")

    known = Customer.objects.get(external_id="user-new")
    assert known.first_name == "Rui"
    assert known.events.count() == 1


def test_the_same_event_sent_under_both_ids_is_kept_once_and_what_referred_to_it_follows():
    anonymous, known = person("anon-1"), person("user-1")
    anon_copy = track(anonymous, "purchase", ids=["order-1"])[0]
    known_copy = track(known, "purchase", ids=["order-1"])[0]
    journey_campaign = journey()
    enrollment = enroll(journey_campaign, anonymous, trigger_event=anon_copy)

    result = merge(anonymous, "user-1")

    assert list(Event.objects.filter(customer=known).values_list("pk", flat=True)) == [
        known_copy.pk]
    enrollment.refresh_from_db()
    assert enrollment.trigger_event_id == known_copy.pk
    assert result.merge.moved["duplicate_events"] == 1


def test_stage_rules_run_on_the_moved_events():
    """The default rules: a first app_open moves awareness to engagement, a purchase to
    conversion. The anonymous customer's history counts as the known customer's."""
    anonymous, known = person("anon-1"), person("user-1")
    track(anonymous, "app_open", "purchase")
    assert Customer.objects.get(pk=anonymous.pk).stage == "conversion"

    merge(anonymous, "user-1")

    known.refresh_from_db()
    assert known.stage == "conversion"
    moves = StageTransition.objects.filter(customer=known, cause__contains="merged")
    assert list(moves.order_by("pk").values_list("from_stage", "to_stage")) == [
        ("awareness", "engagement"), ("engagement", "conversion")]


def test_a_first_time_rule_does_not_fire_for_a_known_customer_who_already_did_it():
    anonymous, known = person("anon-1"), person("user-1")
    track(known, "app_open")
    known.refresh_from_db()
    assert known.stage == "engagement"
    type(known).objects.filter(pk=known.pk).update(stage="awareness")
    track(anonymous, "app_open")

    merge(anonymous, "user-1")

    assert Customer.objects.get(pk=known.pk).stage == "awareness"


def test_the_same_merge_again_answers_the_first_result():
    anonymous = person("anon-1")
    track(anonymous, "screen_view")
    first = merge(anonymous, "user-1")

    again = customer_merge(external_id="user-1", anonymous_external_id="anon-1")

    assert again.already_merged
    assert again.merge.pk == first.merge.pk
    assert CustomerMerge.objects.count() == 1


def test_an_anonymous_customer_merged_into_someone_else_is_refused():
    merge(person("anon-1"), "user-1")

    with pytest.raises(MergedElsewhere):
        customer_merge(external_id="user-2", anonymous_external_id="anon-1")


def test_an_unknown_anonymous_customer_is_does_not_exist():
    with pytest.raises(Customer.DoesNotExist):
        customer_merge(external_id="user-1", anonymous_external_id="nobody")


def test_a_merge_by_primary_key_finds_the_earlier_merge_too():
    anonymous = person("anon-1")
    customer_merge(external_id="user-1", anonymous_pk=anonymous.pk)

    again = customer_merge(external_id="user-1", anonymous_pk=anonymous.pk)

    assert again.already_merged


def test_a_chain_of_merges_keeps_every_anonymous_id_on_the_last_customer():
    merge(person("anon-1"), "anon-2")
    merge(Customer.objects.get(external_id="anon-2"), "user-1")

    user = Customer.objects.get(external_id="user-1")
    assert set(user.merges.values_list("anonymous_external_id", flat=True)) == {
        "anon-1", "anon-2"}
    assert customer_merge(external_id="user-1", anonymous_external_id="anon-1").already_merged


def test_enrollments_follow_and_a_journey_both_are_in_keeps_the_known_ones():
    welcome, other = journey("Welcome"), journey("Other")
    anonymous, known = person("anon-1"), person("user-1")
    anon_welcome, anon_other = enroll(welcome, anonymous), enroll(other, anonymous)
    known_welcome = enroll(welcome, known)

    result = merge(anonymous, "user-1")

    for row in (anon_welcome, anon_other, known_welcome):
        row.refresh_from_db()
    assert {anon_welcome.customer_id, anon_other.customer_id} == {known.pk}
    assert (anon_welcome.state, anon_welcome.exit_reason) == ("exited", "merged")
    assert anon_other.state == known_welcome.state == Enrollment.State.ACTIVE
    assert result.merge.moved["enrollments"] == 2
    assert result.merge.moved["enrollments_exited"] == 1


def test_a_customer_cannot_be_merged_into_itself():
    customer = person("user-1")

    with pytest.raises(Exception, match="into itself"):
        customer_merge(external_id="user-1", anonymous_pk=customer.pk)
