"""pytest plugin (`-p spotbackend.pytest_env` in pytest.ini), imported before Django's settings are read.

The settings refuse to start on the development SECRET_KEY with DEBUG off (deploy safety); the tests
run with DEBUG off like production, so they bring their own key.
"""
import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-" + "0123456789abcdefghijklmnopqrstuvwxyz")
