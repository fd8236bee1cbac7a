"""Users, groups, service providers and claim rules, addressed by their natural keys.

Permissions are the admin's: each viewset has a queryset, so StaffModelPermissions asks
for view/add/change/delete of its model; the sub-resources name theirs.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Count
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from oauth2_provider.generators import generate_client_secret
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from idp import cache, clock, sso
from idp.api import errors
from idp.api.errors import error_responses
from idp.models import ClaimRule, ServiceProvider
from idp.oidc.models import Client
from idp.oidc.preview import id_token_preview
from idp.presets import apply_rule_set
from idp.registry import fetch_metadata, register_from_metadata
from idp.saml.errors import SamlError
from users.models import Group, GroupGraph, User

from . import serializers as s


class Pagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = 1000


# Natural keys hold '/' and ':' (entity IDs, some group names): the URL takes them whole,
# percent-encoded or not.
ENTITY_ID = OpenApiParameter(
    "entity_id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The SP's entity ID, percent-encoded (urn%3Aamazon%3Awebservices, "
    "https%3A%2F%2Fsp.example.com%2Fmetadata); '/' and ':' may also be sent as they are.",
)
GROUP_NAME = OpenApiParameter(
    "name",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The group's name, percent-encoded.",
)
USERNAME = OpenApiParameter("username", OpenApiTypes.STR, OpenApiParameter.PATH)
ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)


def doc(tag: str, summary: str, ok, *refusals: int, status: int = 200, **options):
    """One operation's schema: its answer and the refusals it can give, in the one shape."""
    return extend_schema(
        summary=summary,
        tags=[tag],
        responses={status: ok, **error_responses(*refusals)},
        **options,
    )


WRITE_REFUSALS = (400, 404)


class DirectoryViewSet(viewsets.ModelViewSet):
    # Natural keys, JSON 404s that name what was not found, and a cache bump at commit.

    noun = "object"
    pagination_class = Pagination

    def get_object(self):
        key = self.kwargs[self.lookup_field]
        # No stored key holds a control character, and PostgreSQL refuses NUL in a query.
        printable = not isinstance(key, str) or key.isprintable()
        found = (
            self.get_queryset().filter(**{self.lookup_field: key}).first() if printable else None
        )
        if found is None:
            raise exceptions.NotFound(f"No {self.noun} {key!r}.")
        self.check_object_permissions(self.request, found)
        return found

    # The receivers already bumped the generation inside the transaction; bumping once more
    # after commit keeps a sign-on that read the old rows meanwhile from caching them.
    def perform_create(self, serializer):
        with transaction.atomic():
            serializer.save()
            transaction.on_commit(cache.bump)

    def perform_update(self, serializer):
        with transaction.atomic():
            serializer.save()
            transaction.on_commit(cache.bump)

    def perform_destroy(self, instance):
        with transaction.atomic():
            instance.delete()
            transaction.on_commit(cache.bump)


PUT_NOTE = "PUT replaces: omitted fields take their defaults (lists and maps empty)."


@extend_schema_view(
    list=doc(
        "users",
        "List users",
        s.UserSerializer(many=True),
        400,
        parameters=[
            OpenApiParameter(
                "group",
                OpenApiTypes.STR,
                description="Only the users in this group, directly or through nesting.",
            )
        ],
    ),
    create=doc("users", "Create a user", s.UserSerializer, 400, status=201),
    retrieve=doc("users", "Read a user", s.UserSerializer, 404, parameters=[USERNAME]),
    update=doc(
        "users",
        "Replace a user",
        s.UserSerializer,
        *WRITE_REFUSALS,
        parameters=[USERNAME],
        description=f"{PUT_NOTE} The password stays unless one is given.",
    ),
    partial_update=doc(
        "users",
        "Change some of a user's fields",
        s.UserSerializer,
        *WRITE_REFUSALS,
        parameters=[USERNAME],
    ),
    destroy=doc("users", "Delete a user", None, 404, status=204, parameters=[USERNAME]),
)
class UserViewSet(DirectoryViewSet):
    """Directory users. Accounts with admin rights are changed only with a superuser's token."""

    queryset = User.objects.prefetch_related(
        "attributes", "directory_groups", "totpdevice_set"
    ).order_by("username")
    serializer_class = s.UserSerializer
    lookup_field = "username"
    noun = "user"

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action != "list" or "group" not in self.request.query_params:
            return queryset
        name = self.request.query_params["group"]
        group = Group.objects.filter(name=name).first() if name.isprintable() else None
        if group is None:
            raise serializers.ValidationError({"group": f"No directory group is named {name!r}."})
        inside = s.descendants(group.pk, GroupGraph.load())
        return queryset.filter(directory_groups__in=inside).distinct()

    def _guard_admin_account(self, user: User) -> None:
        """The admin lets any user-changer edit a superuser (and so take over the account);
        here only a superuser's token touches an account with admin rights."""
        if (user.is_staff or user.is_superuser) and not self.request.user.is_superuser:
            raise exceptions.PermissionDenied(
                f"{user.get_username()} has admin rights; only a superuser's token may change "
                "or delete such an account."
            )

    def perform_update(self, serializer):
        self._guard_admin_account(serializer.instance)
        super().perform_update(serializer)

    def perform_destroy(self, instance):
        self._guard_admin_account(instance)
        super().perform_destroy(instance)


@extend_schema_view(
    list=doc("groups", "List directory groups", s.GroupSerializer(many=True)),
    create=doc("groups", "Create a group", s.GroupSerializer, 400, status=201),
    retrieve=doc("groups", "Read a group", s.GroupSerializer, 404, parameters=[GROUP_NAME]),
    update=doc(
        "groups",
        "Replace a group",
        s.GroupSerializer,
        *WRITE_REFUSALS,
        parameters=[GROUP_NAME],
        description=PUT_NOTE,
    ),
    partial_update=doc(
        "groups",
        "Change some of a group's fields",
        s.GroupSerializer,
        *WRITE_REFUSALS,
        parameters=[GROUP_NAME],
    ),
    destroy=doc("groups", "Delete a group", None, 404, status=204, parameters=[GROUP_NAME]),
)
class GroupViewSet(DirectoryViewSet):
    """Directory groups (not Django's staff permission groups); they nest."""

    queryset = (
        Group.objects.prefetch_related("member_of", "subgroups")
        .annotate(direct_members=Count("members", distinct=True))
        .order_by("name")
    )
    serializer_class = s.GroupSerializer
    lookup_field = "name"
    noun = "directory group"


@extend_schema_view(
    list=doc("service-providers", "List service providers", s.ServiceProviderSerializer(many=True)),
    retrieve=doc(
        "service-providers",
        "Read a service provider",
        s.ServiceProviderDetailSerializer,
        404,
        parameters=[ENTITY_ID],
    ),
    partial_update=doc(
        "service-providers",
        "Change a service provider's settings",
        s.ServiceProviderDetailSerializer,
        *WRITE_REFUSALS,
        parameters=[ENTITY_ID],
        request=s.ServiceProviderSerializer,
    ),
    destroy=doc(
        "service-providers",
        "Delete a service provider (its endpoints and claim rules go with it)",
        None,
        404,
        status=204,
        parameters=[ENTITY_ID],
    ),
)
class ServiceProviderViewSet(DirectoryViewSet):
    """Service providers, by entity ID. POST registers one from its metadata (or updates the
    one registered with that entity ID, as the admin's import does); PATCH changes settings."""

    queryset = ServiceProvider.objects.prefetch_related("endpoints").order_by("name", "entity_id")
    lookup_field = "entity_id"
    noun = "service provider with the entity ID"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    # POST registers or updates (as the admin's import): which one is known only once the
    # metadata is read, so create() checks add or change then.
    required_permissions = {
        "GET": ["idp.view_serviceprovider"],
        "HEAD": ["idp.view_serviceprovider"],
        "OPTIONS": [],
        "POST": [],
        "PATCH": ["idp.change_serviceprovider"],
        "DELETE": ["idp.delete_serviceprovider"],
    }

    def get_serializer_class(self):
        if self.action == "create":
            return s.ServiceProviderCreateSerializer
        if self.action == "list":
            return s.ServiceProviderSerializer
        return s.ServiceProviderDetailSerializer

    def _require(self, *permissions: str) -> None:
        user = self.request.user
        if lacking := [name for name in permissions if not user.has_perm(name)]:
            raise exceptions.PermissionDenied(
                f"The token's user {user.get_username()} lacks the permission "
                f"{', '.join(lacking)}, as in the admin."
            )

    @extend_schema(
        summary="Register a service provider from its metadata (or update the registered one)",
        description="Give metadata_xml or metadata_url, and optionally a name, a rule set and "
        "any settings (applied after the rule set's). Registering needs "
        "idp.add_serviceprovider; an SP already registered with the metadata's entity ID is "
        "updated instead (its ACS list replaced), which needs idp.change_serviceprovider; "
        "a rule set also needs idp.add_claimrule and idp.delete_claimrule.",
        tags=["service-providers"],
        request=s.ServiceProviderCreateSerializer,
        responses={
            201: OpenApiResponse(s.ServiceProviderDetailSerializer, "Registered."),
            200: OpenApiResponse(
                s.ServiceProviderDetailSerializer,
                "An SP with this entity ID existed: its metadata, ACS list and the given "
                "settings were updated.",
            ),
            **error_responses(400),
        },
    )
    def create(self, request, *args, **kwargs):
        if not (
            request.user.has_perm("idp.add_serviceprovider")
            or request.user.has_perm("idp.change_serviceprovider")
        ):
            raise exceptions.PermissionDenied(
                f"The token's user {request.user.get_username()} lacks the permission "
                "idp.add_serviceprovider (or idp.change_serviceprovider, to update a "
                "registered SP), as in the admin's metadata import."
            )
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        xml, url = data.pop("metadata_xml", None), data.pop("metadata_url", None)
        rule_set = data.pop("rule_set", "")
        source = "metadata_url" if url else "metadata_xml"
        try:
            if url:
                xml = fetch_metadata(url)
            else:
                xml = xml.encode()
            with transaction.atomic():
                sp, created = register_from_metadata(xml, data.get("name", ""))
                self._require(
                    "idp.add_serviceprovider" if created else "idp.change_serviceprovider"
                )
                if rule_set:
                    self._require("idp.add_claimrule", "idp.delete_claimrule")
                    try:
                        apply_rule_set(sp, rule_set)
                    except DjangoValidationError as error:  # a field of this request, not XML
                        raise serializers.ValidationError(
                            {"rule_set": rule_set_refusal(rule_set, error).detail}
                        ) from error
                if data:
                    s.ServiceProviderSerializer().update(sp, data)
                transaction.on_commit(cache.bump)
        except SamlError as error:
            return errors.respond(error, fields={source: f"{error.title}. {error.detail}"})
        sp = self.get_queryset().get(pk=sp.pk)
        return Response(
            s.ServiceProviderDetailSerializer(sp, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    def perform_update(self, serializer):
        super().perform_update(serializer)
        # A fresh read, so the answer shows what was saved (updated_at, endpoints).
        serializer.instance = self.get_queryset().get(pk=serializer.instance.pk)


def _service_provider(entity_id: str) -> ServiceProvider:
    found = (
        ServiceProvider.objects.filter(entity_id=entity_id).first()
        if entity_id.isprintable()
        else None
    )
    if found is None:
        raise exceptions.NotFound(f"No service provider with the entity ID {entity_id!r}.")
    return found


def _previewed_user(serializer_class, data) -> User:
    """The directory user a preview is for, named by `username` in the request body."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    username = serializer.validated_data["username"]
    user = User.objects.filter(username=username).first() if username.isprintable() else None
    if user is None:
        raise serializers.ValidationError({"username": f"No user {username!r}."})
    return user


class ServiceProviderPreviewView(APIView):
    """The response a user would get at an SP, as the admin's preview shows it."""

    # A signed response for any user: the sign-ons' power.
    required_permissions = ["idp.preview_signed_response", "idp.view_serviceprovider"]
    required_scope = "sign-on"

    @extend_schema(
        summary="Preview the SAML response a user would get at a service provider",
        description="The IdP-initiated response, built and signed as a sign-on would be, "
        "but neither sent nor audited: the release with the rule (or the metadata's "
        "RequestedAttribute) that released each attribute, the AWS checker's findings and "
        "the condition keys. Needs idp.preview_signed_response and "
        "idp.view_serviceprovider, and the sign-on scope. 409: a claim rule is broken.",
        tags=["service-providers"],
        parameters=[ENTITY_ID],
        request=s.SamlPreviewRequestSerializer,
        responses={200: s.SamlPreviewSerializer, **error_responses(400, 404, 409)},
    )
    def post(self, request, entity_id: str):
        sp = _service_provider(entity_id)
        user = _previewed_user(s.SamlPreviewRequestSerializer, request.data)
        return Response(s.SamlPreviewSerializer(sso.preview(user, sp)).data)


def rule_set_refusal(name: str, error: DjangoValidationError) -> SamlError:
    """The admin's words (its rule-set page shows the same messages)."""
    return SamlError(
        f"The rule set {name} does not fit this SP",
        " ".join(error.messages),
        "Change the SP's settings first (PATCH the service provider), or pick another set.",
    )


class ApplyRuleSetView(APIView):
    """The admin's "Apply a ready-made rule set": it changes the SP and replaces its rules."""

    required_permissions = [
        "idp.change_serviceprovider",
        "idp.add_claimrule",
        "idp.delete_claimrule",
    ]

    @extend_schema(
        summary="Apply a ready-made rule set to a service provider",
        description="Sets the rule set's SP settings and replaces the SP's own claim rules "
        "(global rules stay). Needs idp.change_serviceprovider, idp.add_claimrule and "
        "idp.delete_claimrule, as the admin's action does.",
        tags=["service-providers"],
        parameters=[ENTITY_ID],
        request=s.RuleSetSerializer,
        responses={200: s.RuleSetResultSerializer, **error_responses(400, 404)},
    )
    def post(self, request, entity_id: str):
        sp = _service_provider(entity_id)
        serializer = s.RuleSetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        name = serializer.validated_data["rule_set"]
        try:
            with transaction.atomic():
                rules = apply_rule_set(sp, name)
                transaction.on_commit(cache.bump)
        except DjangoValidationError as error:
            raise rule_set_refusal(name, error) from error
        return Response(
            {"rule_set": name, "claim_rules": s.ClaimRuleSerializer(rules, many=True).data}
        )


@extend_schema_view(
    list=doc(
        "claim-rules",
        "A service provider's own claim rules, in order",
        s.SpClaimRuleSerializer(many=True),
        404,
        parameters=[ENTITY_ID],
    ),
    create=doc(
        "claim-rules",
        "Add a claim rule to a service provider",
        s.SpClaimRuleSerializer,
        *WRITE_REFUSALS,
        status=201,
        parameters=[ENTITY_ID],
    ),
)
class ServiceProviderClaimRuleViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """The SP's own rules as the pipeline runs them (order, then id); global rules are at
    /api/v1/claim-rules?global=true. Not paginated: an SP has a handful."""

    queryset = ClaimRule.objects.all()
    serializer_class = s.SpClaimRuleSerializer
    required_permissions = {
        "GET": ["idp.view_claimrule"],
        "HEAD": ["idp.view_claimrule"],
        "OPTIONS": [],
        "POST": ["idp.add_claimrule"],
    }

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication and permissions first
        self.service_provider = _service_provider(kwargs["entity_id"])

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular, without a URL
            return ClaimRule.objects.none()
        return self.service_provider.rules.select_related("service_provider").order_by(
            "order", "id"
        )

    def perform_create(self, serializer):
        with transaction.atomic():
            serializer.save(service_provider=self.service_provider)
            transaction.on_commit(cache.bump)


@extend_schema_view(
    list=doc(
        "claim-rules",
        "List claim rules",
        s.ClaimRuleSerializer(many=True),
        404,
        parameters=[
            OpenApiParameter(
                "service_provider",
                OpenApiTypes.STR,
                description="Only the rules of the SP with this entity ID.",
            ),
            OpenApiParameter(
                "oidc_client",
                OpenApiTypes.STR,
                description="Only the JWT rules of the OIDC client with this client_id.",
            ),
            OpenApiParameter(
                "global",
                OpenApiTypes.BOOL,
                description="true: only the rules for every SP or every OIDC client.",
            ),
        ],
    ),
    create=doc(
        "claim-rules",
        "Create a claim rule (service_provider null: for every SP)",
        s.ClaimRuleSerializer,
        400,
        status=201,
    ),
    retrieve=doc("claim-rules", "Read a claim rule", s.ClaimRuleSerializer, 404, parameters=[ID]),
    partial_update=doc(
        "claim-rules",
        "Change some of a claim rule's fields",
        s.ClaimRuleSerializer,
        *WRITE_REFUSALS,
        parameters=[ID],
    ),
    destroy=doc("claim-rules", "Delete a claim rule", None, 404, status=204, parameters=[ID]),
)
class ClaimRuleViewSet(DirectoryViewSet):
    """Claim rules by ID: one SP's (service_provider is its entity ID) or every SP's (null).
    Each write is validated as the admin validates it."""

    queryset = ClaimRule.objects.select_related("service_provider", "oidc_client").order_by(
        "order", "id"
    )
    serializer_class = s.ClaimRuleSerializer
    lookup_field = "id"
    noun = "claim rule"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action != "list":
            return queryset
        params = self.request.query_params
        if "service_provider" in params:
            queryset = queryset.filter(
                service_provider=_service_provider(params["service_provider"])
            )
        if "oidc_client" in params:
            client_id = params["oidc_client"]
            if (
                not client_id.isprintable()
                or not Client.objects.filter(client_id=client_id).exists()
            ):
                raise exceptions.NotFound(f"No OIDC client with the client_id {client_id!r}.")
            queryset = queryset.filter(oidc_client__client_id=client_id)
        if params.get("global", "").lower() in ("true", "1", "yes"):
            queryset = queryset.filter(service_provider__isnull=True, oidc_client__isnull=True)
        return queryset


CLIENT_ID = OpenApiParameter(
    "client_id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The OIDC client's ID.",
)
CLIENT_TAG = "oidc-clients"


@extend_schema_view(
    list=doc(CLIENT_TAG, "List OIDC clients", s.OidcClientSerializer(many=True)),
    create=doc(
        CLIENT_TAG,
        "Register an OIDC client",
        s.OidcClientSecretSerializer,
        400,
        status=201,
        request=s.OidcClientSerializer,
        description="A confidential client's secret is in this answer only (fedmock keeps "
        "its hash); a public client gets none.",
    ),
    retrieve=doc(
        CLIENT_TAG, "Read an OIDC client", s.OidcClientSerializer, 404, parameters=[CLIENT_ID]
    ),
    update=doc(
        CLIENT_TAG,
        "Replace an OIDC client",
        s.OidcClientSerializer,
        *WRITE_REFUSALS,
        parameters=[CLIENT_ID],
        description=f"{PUT_NOTE} The secret stays.",
    ),
    partial_update=doc(
        CLIENT_TAG,
        "Change some of an OIDC client's fields",
        s.OidcClientSerializer,
        *WRITE_REFUSALS,
        parameters=[CLIENT_ID],
    ),
    destroy=doc(
        CLIENT_TAG,
        "Delete an OIDC client (its tokens and its own JWT claim rules go with it)",
        None,
        404,
        status=204,
        parameters=[CLIENT_ID],
    ),
)
class OidcClientViewSet(DirectoryViewSet):
    """OIDC clients of fedmock's issuer, by client ID, with the admin's permissions."""

    queryset = Client.objects.order_by("name", "client_id")
    serializer_class = s.OidcClientSerializer
    lookup_field = "client_id"
    noun = "OIDC client"

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.perform_create(serializer)
        data = dict(serializer.data)
        if serializer.instance.client_type == Client.CLIENT_CONFIDENTIAL:
            data["client_secret"] = serializer.new_secret
        return Response(data, status=status.HTTP_201_CREATED)


class OidcClientSecretView(APIView):
    """A new secret for a confidential client; the old one stops working at once."""

    required_permissions = ["oidc.change_client"]

    @extend_schema(
        summary="Give an OIDC client a new secret",
        description="The answer shows the new secret once (fedmock keeps its hash); the old "
        "secret stops working at once. Needs oidc.change_client, as in the admin.",
        tags=[CLIENT_TAG],
        parameters=[CLIENT_ID],
        request=None,
        responses={200: s.OidcClientSecretSerializer, **error_responses(404, 409)},
    )
    def post(self, request, client_id: str):
        client = _oidc_client(client_id)
        if client.client_type != Client.CLIENT_CONFIDENTIAL:
            raise SamlError(
                "A public client has no secret",
                f"{client.client_id} is a public client: it proves itself with PKCE alone.",
                "Make it confidential first (PATCH client_type), then ask for a secret.",
                status=409,
            )
        secret = generate_client_secret()
        with transaction.atomic():
            client.client_secret = secret  # hashed by DOT's field as it is saved
            client.save(update_fields=["client_secret", "updated"])
        return Response({**s.OidcClientSerializer(client).data, "client_secret": secret})


def _oidc_client(client_id: str) -> Client:
    found = Client.objects.filter(client_id=client_id).first() if client_id.isprintable() else None
    if found is None:
        raise exceptions.NotFound(f"No OIDC client {client_id!r}.")
    return found


class OidcClientPreviewView(APIView):
    """The ID token a user would get at a client, as the admin's preview shows it."""

    # A signed token for any user: the sign-ons' power, as POST /api/v1/web-identity-tokens.
    required_permissions = ["idp.preview_signed_response", "oidc.view_client"]
    required_scope = "sign-on"

    @extend_schema(
        summary="Preview the ID token a user would get at an OIDC client",
        description="Built as the token endpoint builds one, for every scope the client may "
        "ask for, with the claim rules' trace; signed with the active JWT key, but neither "
        "issued nor audited. Needs idp.preview_signed_response and oidc.view_client, and "
        "the sign-on scope. 409: a claim rule is broken; 503: no active JWT key.",
        tags=[CLIENT_TAG],
        parameters=[CLIENT_ID],
        request=s.IdTokenPreviewRequestSerializer,
        responses={200: s.IdTokenPreviewSerializer, **error_responses(400, 404, 409, 503)},
    )
    def post(self, request, client_id: str):
        client = _oidc_client(client_id)
        user = _previewed_user(s.IdTokenPreviewRequestSerializer, request.data)
        preview = id_token_preview(user, client, clock.now())
        return Response(s.IdTokenPreviewSerializer(preview).data)
