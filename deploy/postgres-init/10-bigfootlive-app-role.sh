#!/bin/sh
# Run once by the postgres image when it creates its data directory, as POSTGRES_USER (who owns
# the database and runs the migrations). Creates the role the API and the worker connect as:
# it owns nothing and has neither SUPERUSER nor BYPASSRLS, so row-level security binds it
# (README, "Row-level security"). Every table the owner creates later is granted to it.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v app_password="$BIGFOOTLIVE_APP_PASSWORD" <<'SQL'
CREATE ROLE bigfootlive_app LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD :'app_password';
GRANT USAGE ON SCHEMA public TO bigfootlive_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO bigfootlive_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO bigfootlive_app;
SQL
