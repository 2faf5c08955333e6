"""The notifications app's services: the outbox (outbox.py) and the clients' webhook endpoints
(webhooks.py, which uses the outbox), importable from here."""
from notifications.services.publish import (  # noqa: F401
    background_publisher,
    notification_publish,
    notification_publish_after_commit,
)
from notifications.services.outbox import (  # noqa: F401
    backoff_seconds,
    notification_deliver,
    notification_enqueue,
    notifications_publish_due,
    notifications_retry_now,
    outbox_metrics_snapshot,
)
from notifications.services.webhooks import (  # noqa: F401
    ENDPOINT_RETRY_SCHEDULE,
    ENDPOINTS_PER_CLIENT_MAX,
    EndpointLimitReached,
    InvalidInput,
    endpoint_url_validate,
    webhook_delivery_redeliver,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_secret_rotate,
    webhook_endpoint_test,
    webhook_endpoint_update,
    webhook_event_emit,
    webhook_events_emit,
)
