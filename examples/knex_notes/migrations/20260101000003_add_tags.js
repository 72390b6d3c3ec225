exports.up = (knex) =>
  knex.schema.alterTable("notes", (table) => {
    table.text("tags").notNullable().defaultTo("");
    table.index(["title"], "notes_title");
  });

exports.down = (knex) =>
  knex.schema.alterTable("notes", (table) => {
    table.dropIndex(["title"], "notes_title");
    table.dropColumn("tags");
  });
