from django.apps import AppConfig


class ClientsConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'clients'

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from clients.models import Client
        from clients.services import client_tokens_forget

        # Every save path (services, admin forms, shell) passes here: the process that made the change
        # forgets its cached tokens at once (the others within AUTH_CACHE_SECONDS). No business rule here.
        def on_change(sender, instance, **kwargs):
            client_tokens_forget()

        post_save.connect(on_change, sender=Client, dispatch_uid="client_token_cache", weak=False)
        post_delete.connect(on_change, sender=Client, dispatch_uid="client_token_cache_delete", weak=False)
