"""Create the notes table."""


def up(db):
    db.execute(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL,"
        " body TEXT NOT NULL DEFAULT '')"
    )


def down(db):
    db.execute("DROP TABLE notes")
