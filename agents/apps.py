from django.apps import AppConfig


class AgentsConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'agents'

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from agents import cache
        from agents.models import Agent, Command

        # Cache upkeep for the hot path (agents/cache.py): every save path (services, admin,
        # factories) passes through these hooks. No business rule lives here.
        def agent_saved(sender, instance, update_fields=None, **kwargs):
            cache.agent_row_changed(agent_pk=instance.pk, fields=update_fields)

        def agent_removed(sender, instance, **kwargs):
            cache.agent_deleted(agent_pk=instance.pk)

        def command_saved(sender, instance, **kwargs):
            cache.agent_commands_changed(agent_pk=instance.agent_id)

        post_save.connect(agent_saved, sender=Agent, dispatch_uid="agent_cache_saved", weak=False)
        post_delete.connect(agent_removed, sender=Agent, dispatch_uid="agent_cache_deleted", weak=False)
        post_save.connect(command_saved, sender=Command, dispatch_uid="agent_cache_command", weak=False)
