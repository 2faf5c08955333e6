"""WSGI entry point (gunicorn spotbackend.wsgi:application)."""
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spotbackend.settings")
django.setup(set_prefix=False)

from spotbackend.handlers import SplitApplication  # noqa: E402

application = SplitApplication()
