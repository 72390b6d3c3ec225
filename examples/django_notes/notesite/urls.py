from django.urls import path

from notes import views

urlpatterns = [
    path("healthz", views.healthz),
    path("api/notes", views.notes),
]
