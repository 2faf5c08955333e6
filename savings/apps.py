from django.apps import AppConfig
from django.db.models.signals import post_migrate


class SavingsConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'savings'

    def ready(self):
        from spotbackend.schedule import sync_after_migrate

        # After every `migrate` (this app's post_migrate fires after all migrations ran), so a fresh
        # database has the scheduled jobs and a changed setting reaches django-celery-beat.
        post_migrate.connect(sync_after_migrate, sender=self, dispatch_uid="spotbackend.schedule.sync")
