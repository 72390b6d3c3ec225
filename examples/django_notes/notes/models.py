from django.db import models


class Note(models.Model):
    title = models.TextField()
    body = models.TextField(default="", blank=True)
    tags = models.ManyToManyField("tags.Tag", blank=True)

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.pk,
            "title": self.title,
            "body": self.body,
            "tags": [t.name for t in self.tags.all()],
        }
