"""Identifiers compare byte for byte on MySQL/MariaDB: `CaseTest` is not `casetest`, `pad-x` is not
`pad-x   ` and one emoji is not another. `utf8mb4_nopad_bin` is binary and, unlike `utf8mb4_bin`,
does not ignore trailing spaces. SQLite already compares exactly (BINARY): a no-op there.
UUID ids (agents, commands, replicas) are native `uuid` columns on MariaDB >= 10.7 and exact already."""
from django.db import migrations

EXACT_COLLATION = "utf8mb4_nopad_bin"

# Every column holding a logical agent id, an EC2 instance id or a spot pool id. The pool id is a
# primary key: its foreign keys change with it.
IDENTIFIER_COLUMNS = {
    "agents": ["logical_agent_id", "instance_id", "current_pool_id"],
    "instances": ["instance_id", "pool_id"],
    "spot_pools": ["id"],
    "spot_price_samples": ["pool_id"],
    "commands": ["target_pool_id", "delivered_instance_id"],
    "switches": ["old_instance_id", "new_instance_id", "old_pool_id", "new_pool_id"],
    "replicas": ["instance_id", "parent_instance_id", "pool_id"],
    "termination_events": ["instance_id", "pool_id"],
    "pool_risk_analysis": ["pool_id"],
}


def _foreign_keys_to(cursor, table):
    cursor.execute(
        "SELECT k.table_name, k.constraint_name, k.column_name, k.referenced_column_name, r.update_rule, r.delete_rule "
        "FROM information_schema.key_column_usage k JOIN information_schema.referential_constraints r "
        "ON r.constraint_schema = k.constraint_schema AND r.constraint_name = k.constraint_name "
        "AND r.table_name = k.table_name "
        "WHERE k.table_schema = DATABASE() AND k.referenced_table_name = %s",
        [table],
    )
    return cursor.fetchall()


def _set_collation(schema_editor, collation_for_table):
    """MariaDB refuses to change the collation of a column in a foreign key (even with the checks off),
    so the foreign keys to `spot_pools` are dropped, the columns changed, and the keys put back."""
    connection = schema_editor.connection
    if connection.vendor != "mysql":
        return
    with connection.cursor() as cursor:
        foreign_keys = _foreign_keys_to(cursor, "spot_pools")
        for table, name, *_ in foreign_keys:
            cursor.execute(f"ALTER TABLE `{table}` DROP FOREIGN KEY `{name}`")
        for table, columns in IDENTIFIER_COLUMNS.items():
            cursor.execute(
                "SELECT column_name, column_type, is_nullable FROM information_schema.columns "
                "WHERE table_schema = DATABASE() AND table_name = %s AND column_name IN %s",
                [table, tuple(columns)],
            )
            rows = cursor.fetchall()
            if not rows:
                continue
            collation = collation_for_table(cursor, table)
            changes = ", ".join(
                f"MODIFY `{name}` {column_type} CHARACTER SET utf8mb4 COLLATE {collation} "
                f"{'NULL' if nullable == 'YES' else 'NOT NULL'}"
                for name, column_type, nullable in rows
            )
            cursor.execute(f"ALTER TABLE `{table}` {changes}")
        for table, name, column, referenced, on_update, on_delete in foreign_keys:
            cursor.execute(
                f"ALTER TABLE `{table}` ADD CONSTRAINT `{name}` FOREIGN KEY (`{column}`) "
                f"REFERENCES `spot_pools` (`{referenced}`) ON UPDATE {on_update} ON DELETE {on_delete}"
            )


def exact(apps, schema_editor):
    _set_collation(schema_editor, lambda cursor, table: EXACT_COLLATION)


def table_default(apps, schema_editor):
    def default(cursor, table):
        cursor.execute(
            "SELECT table_collation FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = %s",
            [table],
        )
        return cursor.fetchone()[0]

    _set_collation(schema_editor, default)


class Migration(migrations.Migration):
    dependencies = [("agents", "0001_initial")]

    operations = [migrations.RunPython(exact, table_default, elidable=False)]
