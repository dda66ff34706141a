from audiences.models import Customer, Event


def put(client, external_id, body):
    return client.put(f"/api/v1/customers/{external_id}/", body, format="json")


def test_a_sign_up_with_a_referral_code_is_tracked_back_to_the_referrer(brand, ana):
    response = put(brand, "new-1", {"first_name": "Rui", "referred_by_code": ana.referral_code})

    assert response.status_code == 201
    assert response.json()["referred_by"] == "ana-1"
    assert Customer.objects.get(external_id="new-1").referred_by == ana
    signup = Event.objects.get(customer=ana, name="referral_signup")
    assert signup.properties == {"referred_customer": "new-1"}


def test_the_code_is_read_without_regard_to_case_or_spaces(brand, ana):
    response = put(brand, "new-1", {"referred_by_code": f" {ana.referral_code.lower()} "})

    assert response.status_code == 201
    assert response.json()["referred_by"] == "ana-1"


def test_the_first_referrer_stays_and_the_signup_is_recorded_once(brand, ana, ben):
    put(brand, "new-1", {"referred_by_code": ana.referral_code})
    put(brand, "new-1", {"referred_by_code": ana.referral_code})
    response = put(brand, "new-1", {"referred_by_code": ben.referral_code})

    assert response.status_code == 200
    assert response.json()["referred_by"] == "ana-1"
    assert Event.objects.filter(name="referral_signup").count() == 1


def test_an_unknown_code_is_a_field_error_and_changes_nothing(brand, ana):
    response = put(brand, "new-1", {"first_name": "Rui", "referred_by_code": "NOSUCHCODE"})

    assert response.status_code == 400
    assert "referred_by_code" in response.json()["errors"]
    assert not Customer.objects.filter(external_id="new-1").exists()


def test_a_customer_cannot_refer_themselves(brand, ana):
    response = put(brand, "ana-1", {"referred_by_code": ana.referral_code})

    assert response.status_code == 400
    assert "referred_by_code" in response.json()["errors"]
    ana.refresh_from_db()
    assert ana.referred_by is None
