"""What the client API reads of the webhook endpoints and their deliveries, scoped to the caller's client."""
from rest_framework.exceptions import NotFound

from notifications.models import Notification, WebhookEndpoint
from spotbackend.api import get_owned_or_404

DELIVERIES_LIMIT_DEFAULT = 50


def webhook_endpoints(*, client) -> dict:
    return {"webhooks": list(WebhookEndpoint.objects.filter(client=client).order_by("created_at", "id"))}


def webhook_endpoint_get(*, client, endpoint_id) -> WebhookEndpoint:
    return get_owned_or_404(WebhookEndpoint.objects.filter(client=client), endpoint_id, label="Webhook endpoint")


def webhook_deliveries(*, endpoint: WebhookEndpoint, limit: int = DELIVERIES_LIMIT_DEFAULT, offset: int = 0) -> dict:
    """The endpoint's recent deliveries, newest first."""
    qs = Notification.objects.filter(endpoint=endpoint)
    return {"deliveries": list(qs.order_by("-created_at", "-id")[offset : offset + limit]), "total": qs.count()}


def webhook_delivery_get(*, endpoint: WebhookEndpoint, delivery_id) -> Notification:
    """One delivery of this endpoint (ids are numbers; anything else, or another endpoint's, is a 404)."""
    try:
        pk = int(str(delivery_id))
    except (TypeError, ValueError):
        pk = None
    delivery = None
    if pk is not None and 0 < pk < 2**63:
        delivery = Notification.objects.select_related("endpoint").filter(endpoint=endpoint, pk=pk).first()
    if delivery is None:
        raise NotFound("Delivery not found.")
    return delivery
