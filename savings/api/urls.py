from django.urls import path

from savings.api import views

urlpatterns = [
    path("client/<str:client_id>/savings", views.ClientSavingsApi.as_view(), name="client-savings"),
]
