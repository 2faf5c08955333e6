from django.urls import path

from notifications.api import views

# No trailing slashes (docs/API.md §0).
urlpatterns = [
    path("client/<str:client_id>/webhooks", views.WebhooksApi.as_view(), name="client-webhooks"),
    path("client/<str:client_id>/webhooks/<str:webhook_id>/rotate-secret", views.WebhookRotateSecretApi.as_view(),
         name="client-webhook-rotate-secret"),
    path("client/<str:client_id>/webhooks/<str:webhook_id>/test", views.WebhookTestApi.as_view(),
         name="client-webhook-test"),
    path("client/<str:client_id>/webhooks/<str:webhook_id>/deliveries", views.WebhookDeliveriesApi.as_view(),
         name="client-webhook-deliveries"),
    path("client/<str:client_id>/webhooks/<str:webhook_id>/deliveries/<str:delivery_id>/redeliver",
         views.WebhookRedeliverApi.as_view(), name="client-webhook-redeliver"),
    path("client/<str:client_id>/webhooks/<str:webhook_id>", views.WebhookApi.as_view(), name="client-webhook"),
]
