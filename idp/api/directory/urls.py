"""/api/v1/ directory routes. Natural keys are whole path segments, and entity IDs (and
group names) may hold '/': `path` converters take them, so the SP's sub-resources are
matched first. An entity ID that itself ends in /rule-set, /claim-rules or /preview is reachable
only through its sub-resources; percent-encode '?', '#' and '%' in any key."""

from django.urls import path

from . import views

users = views.UserViewSet
groups = views.GroupViewSet
sps = views.ServiceProviderViewSet
rules = views.ClaimRuleViewSet
clients = views.OidcClientViewSet

COLLECTION = {"get": "list", "post": "create"}
ITEM = {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}
ITEM_NO_PUT = {"get": "retrieve", "patch": "partial_update", "delete": "destroy"}

urlpatterns = [
    path("users", users.as_view(COLLECTION), name="user-list"),
    path("users/<str:username>", users.as_view(ITEM), name="user-detail"),
    path("groups", groups.as_view(COLLECTION), name="group-list"),
    path("groups/<path:name>", groups.as_view(ITEM), name="group-detail"),
    path("service-providers", sps.as_view(COLLECTION), name="service-provider-list"),
    path(
        "service-providers/<path:entity_id>/rule-set",
        views.ApplyRuleSetView.as_view(),
        name="service-provider-rule-set",
    ),
    path(
        "service-providers/<path:entity_id>/claim-rules",
        views.ServiceProviderClaimRuleViewSet.as_view(COLLECTION),
        name="service-provider-claim-rules",
    ),
    path(
        "service-providers/<path:entity_id>/preview",
        views.ServiceProviderPreviewView.as_view(),
        name="service-provider-preview",
    ),
    path(
        "service-providers/<path:entity_id>",
        sps.as_view(ITEM_NO_PUT),
        name="service-provider-detail",
    ),
    path("claim-rules", rules.as_view(COLLECTION), name="claim-rule-list"),
    path("claim-rules/<int:id>", rules.as_view(ITEM_NO_PUT), name="claim-rule-detail"),
    path("oidc-clients", clients.as_view(COLLECTION), name="oidc-client-list"),
    path(
        "oidc-clients/<path:client_id>/secret",
        views.OidcClientSecretView.as_view(),
        name="oidc-client-secret",
    ),
    path(
        "oidc-clients/<path:client_id>/preview",
        views.OidcClientPreviewView.as_view(),
        name="oidc-client-preview",
    ),
    path("oidc-clients/<path:client_id>", clients.as_view(ITEM), name="oidc-client-detail"),
]
