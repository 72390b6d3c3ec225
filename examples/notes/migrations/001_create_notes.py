"""Create the notes table."""


def up(db):
    # db is the raw connection: sqlite3's, or psycopg's on PostgreSQL.
    sqlite = type(db).__module__ == "sqlite3"
    key = "INTEGER PRIMARY KEY AUTOINCREMENT" if sqlite else "SERIAL PRIMARY KEY"
    db.execute(f"CREATE TABLE notes (id {key}, title TEXT NOT NULL, body TEXT NOT NULL DEFAULT '')")


def down(db):
    db.execute("DROP TABLE notes")
