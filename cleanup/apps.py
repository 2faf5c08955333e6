from django.apps import AppConfig


class CleanupConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'cleanup'
