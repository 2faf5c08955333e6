"""The staff back-office: the admin site with the fleet at a glance (backoffice/admin_views.py)."""
