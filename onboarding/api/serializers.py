"""Shapes of the customers batch endpoint, for its documentation: items are checked by
onboarding.items (the rules files share), not by these serializers."""

from rest_framework import serializers

from audiences.api.serializers import CustomerUpsertSerializer
from journeyhub.api_errors import StrictFieldsMixin
from notifications.api.serializers import DeviceRegisterSerializer
from onboarding.items import DEVICES_MAX

BATCH_MAX = 1000  # one request, one transaction: bigger batches hold locks too long


class BatchDeviceSerializer(DeviceRegisterSerializer):
    """A device as the app registers it (POST /me/devices/)."""


class BatchCustomerSerializer(CustomerUpsertSerializer):
    external_id = serializers.CharField(max_length=255, trim_whitespace=False)
    referral_code = serializers.CharField(
        max_length=16, required=False,
        help_text="The customer's own referral code, e.g. one brought from another system: "
                  "4 to 16 letters, digits, - or _ (stored upper-case). New customers without "
                  "one get a fresh code.",
    )
    devices = BatchDeviceSerializer(
        many=True, required=False, max_length=DEVICES_MAX,
        help_text="Registered as the app would: a token already known moves to this customer. "
                  "An import never re-activates a device a provider reported dead.",
    )


class CustomerBatchSerializer(StrictFieldsMixin, serializers.Serializer):
    customers = BatchCustomerSerializer(many=True, min_length=1, max_length=BATCH_MAX)


class CustomerBatchItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    external_id = serializers.CharField(required=False, help_text="Absent when invalid.")
    status = serializers.ChoiceField(choices=["created", "updated", "unchanged", "invalid"])
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False,
        help_text="Only when invalid: field path (devices[0].token) to messages.",
    )


class CustomerBatchResultSerializer(serializers.Serializer):
    results = CustomerBatchItemResultSerializer(many=True)
