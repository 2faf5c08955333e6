from django.apps import AppConfig


class ClientsConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'clients'

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from clients.models import Client, ClientToken
        from clients.services import client_tokens_forget

        # Every save path (services, admin forms, shell) passes here: the process that changed a client
        # or a token forgets its cached tokens at once (the others within AUTH_CACHE_SECONDS).
        def on_change(sender, instance, **kwargs):
            client_tokens_forget()

        for model in (Client, ClientToken):
            post_save.connect(on_change, sender=model, dispatch_uid=f"token_cache_{model.__name__}", weak=False)
            post_delete.connect(on_change, sender=model, dispatch_uid=f"token_cache_del_{model.__name__}", weak=False)
