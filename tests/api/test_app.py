import pytest

from audiences.models import Topic, TopicOptOut


@pytest.fixture
def topics(db):
    Topic.objects.all().delete()
    return [
        Topic.objects.create(key="news", name="News"),
        Topic.objects.create(key="offers", name="Offers"),
    ]


def test_me_shows_my_profile_without_marketing_internals(app_for, ana):
    response = app_for(ana).get("/api/v1/me/")

    assert response.status_code == 200
    body = response.json()
    assert body["external_id"] == "ana-1"
    assert body["time_zone"] == "Europe/Lisbon"
    assert "referral_code" in body
    assert not {"attributes", "bucket", "stage"} & set(body)


def test_me_patch_changes_only_the_given_fields(app_for, ana):
    response = app_for(ana).patch("/api/v1/me/", {"locale": "pt-PT", "last_name": "Sousa"},
                                  format="json")

    assert response.status_code == 200
    ana.refresh_from_db()
    assert (ana.first_name, ana.last_name, ana.locale) == ("Ana", "Sousa", "pt-PT")


@pytest.mark.parametrize("body, field", [
    ({"time_zone": "Nowhere/City"}, "time_zone"),
    ({"email": "me@example.com"}, "email"),
    ({"push_opt_out": True}, "push_opt_out"),
    ({"attributes": {"vip": True}}, "attributes"),
])
def test_me_patch_refuses_bad_or_forbidden_fields(app_for, ana, body, field):
    response = app_for(ana).patch("/api/v1/me/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"]
    ana.refresh_from_db()
    assert ana.email == "" and ana.attributes == {} and not ana.push_opt_out


def test_consent_lists_every_topic_with_my_choice(app_for, ana, topics):
    TopicOptOut.objects.create(customer=ana, topic=topics[1])

    response = app_for(ana).get("/api/v1/me/consent/")

    assert response.status_code == 200
    assert response.json() == {"push_opt_out": False, "topics": [
        {"key": "news", "name": "News", "opted_in": True},
        {"key": "offers", "name": "Offers", "opted_in": False},
    ]}


def test_consent_put_replaces_my_choices(app_for, ana, topics):
    TopicOptOut.objects.create(customer=ana, topic=topics[1])

    response = app_for(ana).put("/api/v1/me/consent/",
                                {"push_opt_out": True, "opted_out_topics": ["news"]},
                                format="json")

    assert response.status_code == 200
    assert [t["opted_in"] for t in response.json()["topics"]] == [False, True]
    ana.refresh_from_db()
    assert ana.push_opt_out is True
    assert list(ana.topic_opt_outs.values_list("topic__key", flat=True)) == ["news"]


def test_consent_of_one_customer_is_not_anothers(app_for, ana, ben, topics):
    app_for(ana).put("/api/v1/me/consent/", {"push_opt_out": True, "opted_out_topics": ["news"]},
                     format="json")

    response = app_for(ben).get("/api/v1/me/consent/")

    assert response.json()["push_opt_out"] is False
    assert all(t["opted_in"] for t in response.json()["topics"])


@pytest.mark.parametrize("body, field", [
    ({"push_opt_out": False, "opted_out_topics": ["unknown"]}, "opted_out_topics"),
    ({"opted_out_topics": []}, "push_opt_out"),
    ({"push_opt_out": False}, "opted_out_topics"),
    ({"push_opt_out": False, "opted_out_topics": [], "topics": []}, "topics"),
])
def test_consent_put_refuses_bad_input(app_for, ana, topics, body, field):
    response = app_for(ana).put("/api/v1/me/consent/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_topics_are_listed_for_an_app(app_for, ana, topics):
    response = app_for(ana).get("/api/v1/topics/")

    assert response.status_code == 200
    assert [t["key"] for t in response.json()] == ["news", "offers"]


def test_topics_are_listed_for_a_brand_backend(brand, topics):
    response = brand.get("/api/v1/topics/")

    assert response.status_code == 200
    assert response.json()[0] == {"key": "news", "name": "News", "description": ""}


@pytest.mark.django_db
def test_topics_need_some_credentials(client):
    assert client.get("/api/v1/topics/").status_code == 401


def test_a_customer_sees_and_changes_only_their_own_profile(app_for, ana, ben):
    anas_app = app_for(ana)

    seen = anas_app.get("/api/v1/me/").json()
    anas_app.patch("/api/v1/me/", {"first_name": "Anabela"}, format="json")

    assert seen["external_id"] == "ana-1"
    ben.refresh_from_db()
    assert ben.first_name == "Ben"
    assert app_for(ben).get("/api/v1/me/").json()["first_name"] == "Ben"
    assert anas_app.get("/api/v1/customers/ben-2/").status_code == 401
