// knex reads this for `knex migrate:*`; server.js uses the same settings.
// DATABASE_URL is the environment's PostgreSQL database (shiplane sets it).
module.exports = {
  client: "pg",
  connection: process.env.DATABASE_URL || "postgresql://localhost/knex_notes",
  pool: { min: 0, max: 5 },
  migrations: { directory: "./migrations" },
};
