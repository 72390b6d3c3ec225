import json

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from notes.models import Note
from tags.models import Tag


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


@csrf_exempt
def notes(request: HttpRequest) -> JsonResponse:
    if request.method == "POST":
        payload = json.loads(request.body or b"{}")
        title = str(payload.get("title", "")).strip()
        if not title:
            return JsonResponse({"error": "title is required"}, status=400)
        note = Note.objects.create(title=title, body=str(payload.get("body", "")))
        for name in payload.get("tags", []):
            note.tags.add(Tag.objects.get_or_create(name=str(name))[0])
        return JsonResponse(note.to_dict(), status=201)
    return JsonResponse({"notes": [n.to_dict() for n in Note.objects.order_by("id")]})
