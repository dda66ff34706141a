"""Segment endpoints, for brand backends keeping their audiences as code next to their
campaigns (an API key with the segments scopes; ``campaigns`` may read them) and for staff
sessions with the segment model's permissions."""

import re
from urllib.parse import urlencode

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from audiences.api import segments_serializers as s
from audiences.models import Segment
from audiences.selectors import segment_count, segment_members_page
from audiences.services import (
    segment_delete,
    segment_members_change,
    segment_members_replace,
    segment_save,
)
from journeyhub.api_auth import STAFF_AUTHENTICATION, StaffOrScope
from journeyhub.api_errors import (
    ErrorSerializer,
    StrictJSONParser,
    StrictLimitOffsetPagination,
    error_responses,
    refuse_body,
)
from journeyhub.models import ApiKey

KEY_PATTERN = re.compile(r"[-a-zA-Z0-9_]{1,50}")  # what a SlugField(max_length=50) holds
READ = (ApiKey.Scope.SEGMENTS_READ, ApiKey.Scope.CAMPAIGNS)  # campaigns need their audiences
WRITE = ApiKey.Scope.SEGMENTS_WRITE
SEGMENT_KEY = OpenApiParameter("key", str, OpenApiParameter.PATH,
                               description="The segment's key, e.g. lisbon-foodies.")
WRITE_ERRORS = error_responses(400, 401, 403, 404, 413, 415, 429)
ONE_ERRORS = error_responses(401, 403, 404, 429)
KINDS = OpenApiParameter("kind", str, enum=Segment.Kind.values, required=False)


class SegmentInUse(APIException):
    status_code = 409
    default_code = "in_use"


class SegmentRulesBroken(APIException):
    """The stored rules no longer compile (a segment they name was deleted)."""

    status_code = 409
    default_code = "rules_invalid"


BROKEN = {409: OpenApiResponse(ErrorSerializer, description="The segment's stored rules no "
                                                            "longer compile; the detail says "
                                                            "why.")}


class SegmentPagination(StrictLimitOffsetPagination):
    default_limit = 50
    max_limit = 200


class SegmentApiView(APIView):
    authentication_classes = STAFF_AUTHENTICATION
    permission_classes = [permissions.IsAuthenticated, StaffOrScope]
    parser_classes = [StrictJSONParser]
    perm_model = "audiences.segment"
    required_scopes = {"GET": READ, "POST": WRITE, "PUT": WRITE, "PATCH": WRITE, "DELETE": WRITE}


def _segment_or_404(key: str) -> Segment:
    segment = Segment.objects.filter(key=key).first() if KEY_PATTERN.fullmatch(key) else None
    if segment is None:
        raise NotFound(f"No segment with key {key!r}.")
    return segment


def _save(serializer: s.SegmentSerializer, segment: Segment | None = None) -> Segment:
    segment = segment or Segment()
    for name, value in serializer.validated_data.items():
        setattr(segment, name, value)
    return segment_save(segment=segment)


def _reading(read, segment: Segment):
    """A read of the segment's customers; rules that stopped compiling are a 409."""
    try:
        return read(segment)
    except DjangoValidationError as error:
        raise SegmentRulesBroken("; ".join(error.messages)) from error


class SegmentListView(SegmentApiView, GenericAPIView):
    pagination_class = SegmentPagination
    serializer_class = s.SegmentSerializer

    @extend_schema(
        tags=["segments"], summary="List segments", parameters=[KINDS],
        responses={200: s.SegmentSerializer(many=True), **error_responses(400, 401, 403, 429)},
    )
    def get(self, request):
        segments = Segment.objects.order_by("key")
        kind = request.query_params.get("kind")
        if kind is not None:
            if kind not in Segment.Kind.values:
                raise ValidationError({"kind": [f"One of: {', '.join(Segment.Kind.values)}."]})
            segments = segments.filter(kind=kind)
        page = self.paginate_queryset(segments)
        return self.get_paginated_response(s.SegmentSerializer(page, many=True).data)

    @extend_schema(
        tags=["segments"], summary="Create a segment", request=s.SegmentSerializer,
        description="Rules are checked as the admin checks them: every mistake is named by "
                    "its place, e.g. `all[1].event.min_count: must be a positive integer`.",
        responses={201: s.SegmentSerializer, **error_responses(400, 401, 403, 413, 415, 429)},
    )
    def post(self, request):
        serializer = s.SegmentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(s.SegmentSerializer(_save(serializer)).data, status=201)


class SegmentDetailView(SegmentApiView):
    @extend_schema(tags=["segments"], summary="Read a segment", parameters=[SEGMENT_KEY],
                   responses={200: s.SegmentSerializer, **ONE_ERRORS})
    def get(self, request, key):
        return Response(s.SegmentSerializer(_segment_or_404(key)).data)

    @extend_schema(
        tags=["segments"], summary="Replace a segment", parameters=[SEGMENT_KEY],
        description="A `key` in the body renames the segment (refused while other segments' "
                    "rules name it by its key).",
        request=s.SegmentSerializer, responses={200: s.SegmentSerializer, **WRITE_ERRORS},
    )
    def put(self, request, key):
        return self._update(request, key, partial=False)

    @extend_schema(tags=["segments"], summary="Change some of a segment's fields",
                   parameters=[SEGMENT_KEY], request=s.SegmentSerializer,
                   responses={200: s.SegmentSerializer, **WRITE_ERRORS})
    def patch(self, request, key):
        return self._update(request, key, partial=True)

    def _update(self, request, key: str, partial: bool) -> Response:
        segment = _segment_or_404(key)
        serializer = s.SegmentSerializer(segment, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return Response(s.SegmentSerializer(_save(serializer, segment)).data)

    @extend_schema(
        tags=["segments"], summary="Delete a segment nothing uses", parameters=[SEGMENT_KEY],
        responses={
            204: None, **ONE_ERRORS,
            409: OpenApiResponse(ErrorSerializer, description="Campaigns, steps, sends or "
                                                              "other segments' rules use it."),
        },
    )
    def delete(self, request, key):
        refuse_body(request)
        try:
            segment_delete(segment=_segment_or_404(key))
        except DjangoValidationError as error:
            raise SegmentInUse(error.messages[0]) from error
        return Response(status=204)


class SegmentCountView(SegmentApiView):
    @extend_schema(
        tags=["segments"], summary="Count a segment's customers now", parameters=[SEGMENT_KEY],
        description="One COUNT query, however many rules: about half a second at a million "
                    "customers.",
        responses={200: s.SegmentCountSerializer, **ONE_ERRORS, **BROKEN},
    )
    def get(self, request, key):
        count = _reading(segment_count, _segment_or_404(key))
        return Response(s.SegmentCountSerializer({"count": count}).data)


class SegmentMembersView(SegmentApiView):
    # Members are customers' data: reading them takes segments:read, not campaigns.
    required_scopes = {"GET": ApiKey.Scope.SEGMENTS_READ, "PUT": WRITE, "PATCH": WRITE}

    @extend_schema(
        tags=["segments"], summary="List a segment's members",
        parameters=[SEGMENT_KEY, s.SegmentMembersQuerySerializer],
        description="Customers in customer order, a page at a time: follow `next` until it is "
                    "null. Every page costs the same, the last of a million as the first.",
        responses={200: s.SegmentMembersPageSerializer, **error_responses(400), **ONE_ERRORS,
                   **BROKEN},
    )
    def get(self, request, key):
        segment = _segment_or_404(key)
        query = s.SegmentMembersQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        limit, after = query.validated_data["limit"], query.validated_data.get("after")
        members = _reading(lambda seg: segment_members_page(seg, after=after, limit=limit + 1),
                           segment)
        next_url = None
        if len(members) > limit:
            members = members[:limit]
            params = {"limit": limit, "after": members[-1].pk}
            next_url = request.build_absolute_uri(f"{request.path}?{urlencode(params)}")
        results = s.SegmentMemberSerializer(members, many=True).data
        return Response({"results": results, "next": next_url})

    @extend_schema(
        tags=["segments"], summary="Replace a static segment's members",
        parameters=[SEGMENT_KEY], request=s.SegmentMembersReplaceSerializer,
        description=f"At most {s.MEMBERS_PER_REQUEST:,} external ids: for a longer list, "
                    "replace with the first part and add the rest with PATCH. If any id names "
                    "no customer, nothing changes and the error lists the first 20.",
        responses={200: s.SegmentMembersCountSerializer, **WRITE_ERRORS},
    )
    def put(self, request, key):
        segment = _segment_or_404(key)
        body = s.SegmentMembersReplaceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        count = _member_write(segment_members_replace, segment=segment,
                              external_ids=body.validated_data["external_ids"])
        return Response(s.SegmentMembersCountSerializer({"count": count}).data)

    @extend_schema(
        tags=["segments"], summary="Add and remove a static segment's members",
        parameters=[SEGMENT_KEY], request=s.SegmentMembersChangeSerializer,
        description=f"At most {s.MEMBERS_PER_REQUEST:,} external ids in all. An id to add that "
                    "names no customer fails the whole change; an id to remove that is not a "
                    "member is skipped.",
        responses={200: s.SegmentMembersChangedSerializer, **WRITE_ERRORS},
    )
    def patch(self, request, key):
        segment = _segment_or_404(key)
        body = s.SegmentMembersChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        changed = _member_write(segment_members_change, segment=segment,
                                add=body.validated_data.get("add", []),
                                remove=body.validated_data.get("remove", []))
        return Response(s.SegmentMembersChangedSerializer(changed).data)


def _member_write(service, *, segment: Segment, **arguments):
    """A member service, its ValidationError reported under the field the unknown ids came in
    (or, for a dynamic segment, about the request as a whole)."""
    try:
        return service(segment=segment, **arguments)
    except DjangoValidationError as error:
        field = next(iter(arguments))
        if segment.kind != Segment.Kind.STATIC:
            field = "non_field_errors"
        raise ValidationError({field: error.messages}) from error
