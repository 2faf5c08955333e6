"""A client's own webhook endpoints (issue 20; docs/API.md "Webhooks"): dashboard tokens only, the
caller's own client only (another client's endpoints and deliveries are 404s). Views only translate."""
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from clients.api.serializers import DeletedOutput, PageQuery
from clients.api.views import ClientApi
from clients.audit import audit_request
from notifications import selectors
from notifications.api import serializers as s
from notifications.services import (
    webhook_delivery_redeliver,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_secret_rotate,
    webhook_endpoint_test,
    webhook_endpoint_update,
)
from spotbackend.api import BODY_ERRORS, answers, parse, render


class WebhooksApi(ClientApi):
    """The client's webhook endpoints; creating one answers its signing secret this once."""

    @extend_schema(responses=answers(s.WebhookListOutput, 404))
    def get(self, request, client_id):
        return Response(render(s.WebhookListOutput, selectors.webhook_endpoints(client=self.get_client(client_id))))

    @extend_schema(request=s.WebhookCreateInput,
                   responses=answers(s.WebhookWithSecretOutput, 404, *BODY_ERRORS, status=201))
    def post(self, request, client_id):
        client = self.get_client(client_id)
        data = parse(s.WebhookCreateInput, request)
        endpoint = webhook_endpoint_create(client=client, **data)
        audit_request(request, action="webhook.create", target=endpoint.pk,
                      details={"events": endpoint.events, "format": endpoint.format})
        return Response(render(s.WebhookWithSecretOutput, endpoint), status=201)


class WebhookApi(ClientApi):
    """Change (any of url, events, description, format, enabled) or delete one endpoint."""

    @extend_schema(request=s.WebhookUpdateInput, responses=answers(s.WebhookSerializer, 404, *BODY_ERRORS))
    def patch(self, request, client_id, webhook_id):
        endpoint = selectors.webhook_endpoint_get(client=self.get_client(client_id), endpoint_id=webhook_id)
        changes = dict(parse(s.WebhookUpdateInput, request))
        if not changes:
            raise ValidationError({"detail": "Nothing to change; expected any of url, events, description, "
                                             "format, enabled."})
        endpoint = webhook_endpoint_update(endpoint=endpoint, changes=changes)
        audit_request(request, action="webhook.update", target=endpoint.pk,
                      details={k: v for k, v in changes.items() if k != "url"} | ({"url": "changed"} if "url" in changes else {}))
        return Response(render(s.WebhookSerializer, endpoint))

    @extend_schema(request=None, responses=answers(DeletedOutput, 404))
    def delete(self, request, client_id, webhook_id):
        endpoint = selectors.webhook_endpoint_get(client=self.get_client(client_id), endpoint_id=webhook_id)
        pk = endpoint.pk
        webhook_endpoint_delete(endpoint=endpoint)
        audit_request(request, action="webhook.delete", target=pk)
        return Response(render(DeletedOutput, {"message": "Webhook endpoint deleted"}))


class WebhookRotateSecretApi(ClientApi):
    """A new signing secret (shown this once); the old one also signs for 24 h (both signatures sent)."""

    @extend_schema(request=None, responses=answers(s.WebhookWithSecretOutput, 404))
    def post(self, request, client_id, webhook_id):
        endpoint = selectors.webhook_endpoint_get(client=self.get_client(client_id), endpoint_id=webhook_id)
        endpoint = webhook_endpoint_secret_rotate(endpoint=endpoint)
        audit_request(request, action="webhook.rotate_secret", target=endpoint.pk)
        return Response(render(s.WebhookWithSecretOutput, endpoint))


class WebhookTestApi(ClientApi):
    """Queue a `webhook.test` event to this endpoint (sent after the answer; see its deliveries)."""

    @extend_schema(request=None, responses=answers(s.DeliverySerializer, 404, status=202))
    def post(self, request, client_id, webhook_id):
        endpoint = selectors.webhook_endpoint_get(client=self.get_client(client_id), endpoint_id=webhook_id)
        delivery = webhook_endpoint_test(endpoint=endpoint)
        audit_request(request, action="webhook.test", target=endpoint.pk, details={"delivery_id": delivery.pk})
        return Response(render(s.DeliverySerializer, delivery), status=202)


class WebhookDeliveriesApi(ClientApi):
    """The endpoint's recent deliveries, newest first: status, attempts, last response code."""

    @extend_schema(parameters=[PageQuery], responses=answers(s.DeliveryPageOutput, 400, 404))
    def get(self, request, client_id, webhook_id):
        endpoint = selectors.webhook_endpoint_get(client=self.get_client(client_id), endpoint_id=webhook_id)
        query = PageQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(render(s.DeliveryPageOutput, selectors.webhook_deliveries(endpoint=endpoint,
                                                                                  **query.validated_data)))


class WebhookRedeliverApi(ClientApi):
    """Send a delivery's event again (same event id and body) as a new delivery."""

    @extend_schema(request=None, responses=answers(s.DeliverySerializer, 400, 404, status=202))
    def post(self, request, client_id, webhook_id, delivery_id):
        endpoint = selectors.webhook_endpoint_get(client=self.get_client(client_id), endpoint_id=webhook_id)
        delivery = selectors.webhook_delivery_get(endpoint=endpoint, delivery_id=delivery_id)
        again = webhook_delivery_redeliver(delivery=delivery)
        audit_request(request, action="webhook.redeliver", target=endpoint.pk,
                      details={"delivery_id": delivery.pk, "new_delivery_id": again.pk})
        return Response(render(s.DeliverySerializer, again), status=202)
