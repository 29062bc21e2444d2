#!/bin/sh
# One-shot job (temporalio/admin-tools): create Temporal's two PostgreSQL databases and bring
# their schemas to the version this admin-tools image ships.
#
# Safe to run on every `docker compose up`: `create` ignores a database that exists,
# `setup-schema -v 0.0` leaves a newer version alone and `update-schema` applies only the
# missing steps. After raising TEMPORAL_VERSION, this is what upgrades the schema.
#
# Connection from the environment, read by temporal-sql-tool itself:
# SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER, SQL_PASSWORD.
set -eu

: "${SQL_HOST:?set SQL_HOST}" "${SQL_USER:?set SQL_USER}" "${SQL_PASSWORD:?set SQL_PASSWORD}"
SCHEMA_DIR=${SCHEMA_DIR:-/etc/temporal/schema/postgresql/v12}

echo "Waiting for PostgreSQL at ${SQL_HOST}:${SQL_PORT:-5432}..."
tries=0
until nc -z "$SQL_HOST" "${SQL_PORT:-5432}"; do
  tries=$((tries + 1))
  if [ "$tries" -ge 30 ]; then
    echo "PostgreSQL at ${SQL_HOST} did not answer within 60 s" >&2
    exit 1
  fi
  sleep 2
done

for db in temporal temporal_visibility; do
  case $db in
    temporal) versioned="$SCHEMA_DIR/temporal/versioned" ;;
    *) versioned="$SCHEMA_DIR/visibility/versioned" ;;
  esac
  echo "Schema of database ${db}..."
  temporal-sql-tool --db "$db" create
  temporal-sql-tool --db "$db" setup-schema -v 0.0
  temporal-sql-tool --db "$db" update-schema -d "$versioned"
done
echo "Temporal schemas are up to date."
