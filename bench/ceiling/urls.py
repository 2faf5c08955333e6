from django.urls import re_path

from ceiling.views import CeilingApi

# Every path and method, so the load generator sends the server's exact traffic.
urlpatterns = [re_path(r"", CeilingApi.as_view())]
