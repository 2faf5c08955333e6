from django.apps import AppConfig


class ClientsConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'clients'

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from clients.models import Client, ClientToken
        from clients.services import client_changed, token_changed

        # Every save path (services, admin forms, shell) must reach the token caches: a signal is
        # the one hook they all pass through. Cache upkeep only; no business rule lives here.
        def on_change(sender, instance, **kwargs):
            client_changed(client=instance)

        post_save.connect(on_change, sender=Client, dispatch_uid="client_token_cache", weak=False)
        post_delete.connect(on_change, sender=Client, dispatch_uid="client_token_cache_delete", weak=False)

        def on_token_change(sender, instance, **kwargs):
            token_changed(token=instance)

        post_save.connect(on_token_change, sender=ClientToken, dispatch_uid="named_token_cache", weak=False)
        post_delete.connect(on_token_change, sender=ClientToken, dispatch_uid="named_token_cache_delete", weak=False)
