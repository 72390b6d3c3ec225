exports.up = (knex) =>
  knex.schema.alterTable("notes", (table) => {
    table.text("body").notNullable().defaultTo("");
  });

exports.down = (knex) =>
  knex.schema.alterTable("notes", (table) => {
    table.dropColumn("body");
  });
