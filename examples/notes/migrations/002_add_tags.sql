-- up
ALTER TABLE notes ADD COLUMN tags TEXT NOT NULL DEFAULT '';
CREATE INDEX notes_title ON notes(title);

-- down
DROP INDEX notes_title;
ALTER TABLE notes DROP COLUMN tags;
