"""Alembic environment: runs on the connection Database.migrate() hands over."""

from alembic import context

from yingyun.storage.schema import metadata

connection = context.config.attributes.get("connection")


def run() -> None:
    if connection is None:
        raise RuntimeError("run migrations through yingyun.storage.db.Database.migrate()")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
