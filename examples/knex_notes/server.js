// notes, the Node way: plain node:http, knex (pg) for queries, knex migrations.
// Served as `node server.js` with PORT (and HOST) set; DATABASE_URL picks the database.
"use strict";

const http = require("node:http");
const knex = require("knex")(require("./knexfile"));
const { version } = require("./package.json");

const NOTE = ["id", "title", "body", "tags"];

function send(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
  res.end(data);
}

function readJson(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString() || "{}"));
      } catch {
        resolve({});
      }
    });
  });
}

async function route(req, res) {
  const url = new URL(req.url, "http://localhost");
  if (req.method === "GET" && url.pathname === "/healthz") {
    await knex("notes").select("id").limit(1);
    return send(res, 200, { ok: true, version });
  }
  if (req.method === "GET" && url.pathname === "/api/version") {
    return send(res, 200, { version, sha: process.env.SHIPLANE_SHA || null });
  }
  if (url.pathname === "/api/notes" && req.method === "GET") {
    return send(res, 200, { notes: await knex("notes").select(NOTE).orderBy("id"), version });
  }
  if (url.pathname === "/api/notes" && req.method === "POST") {
    const payload = await readJson(req);
    const title = String(payload.title || "").trim();
    if (!title) return send(res, 400, { error: "title is required" });
    const [note] = await knex("notes")
      .insert({ title, body: String(payload.body || ""), tags: String(payload.tags || "") })
      .returning(NOTE);
    return send(res, 201, note);
  }
  const one = url.pathname.match(/^\/api\/notes\/(\d+)$/);
  if (one && req.method === "GET") {
    const note = await knex("notes").select(NOTE).where({ id: Number(one[1]) }).first();
    return note ? send(res, 200, note) : send(res, 404, { error: "no such note" });
  }
  return send(res, 404, { error: "not found" });
}

const server = http.createServer((req, res) => {
  route(req, res).catch((err) => {
    console.error(err);
    if (!res.headersSent) send(res, 500, { error: "internal error" });
  });
});

server.listen(Number(process.env.PORT || 3000), process.env.HOST || "127.0.0.1");

// shiplane stops an instance with SIGTERM: finish what is in flight, then close the pool.
process.on("SIGTERM", () => server.close(() => knex.destroy().then(() => process.exit(0))));
