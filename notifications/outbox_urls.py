from django.urls import path

from notifications import views

app_name = "outbox"

urlpatterns = [
    path("", views.outbox, name="list"),
]
