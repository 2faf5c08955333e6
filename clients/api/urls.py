from django.urls import path

from clients.api import views

urlpatterns = [
    path("client/validate", views.ValidateApi.as_view(), name="client-validate"),
]
