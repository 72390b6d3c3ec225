"""`shiplane init`'s detection: what an app is (framework, run command, migrations, database,
dependencies, routes) read from its files, and the commented shiplane.toml written from it."""
