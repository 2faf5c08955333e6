"""Model rows read with plain SQL on the hottest write path (a burst of termination notices).

The ORM builds and compiles every statement again on each call: for the agent's locked row that is
about as much CPU as the rest of the statement's trip. `ModelRows` works out a model's column list and
each column's converters once per process and turns fetched rows into model instances exactly as the
ORM's own iterator does (the same backend and field converters, `Model.from_db`), so callers get the
usual objects. Only for a few fixed, simple statements: everything else stays on the ORM.
See docs/PERFORMANCE.md ("Termination notices")."""
from django.db import connections
from django.db.models.constants import OnConflict


class ModelRows:
    def __init__(self, model):
        self.model = model
        self._prepared: dict[str, tuple] = {}  # per database alias
        self._inserts: dict[tuple, tuple] = {}  # (alias, rows, with the automatic key) -> (fields, SQL)
        self._updates: dict[tuple, tuple] = {}  # (alias, field names) -> (fields, SQL)

    def _prepare(self, conn) -> tuple:
        prepared = self._prepared.get(conn.alias)
        if prepared is None:
            meta, qn = self.model._meta, conn.ops.quote_name
            fields = meta.concrete_fields
            cols = [field.get_col(meta.db_table) for field in fields]
            converters = [
                [(c, col) for c in conn.ops.get_db_converters(col) + col.get_db_converters(conn)] for col in cols
            ]
            select = ", ".join(f"{qn(meta.db_table)}.{qn(field.column)}" for field in fields)
            prepared = ([field.attname for field in fields], converters, select, qn(meta.db_table))
            self._prepared[conn.alias] = prepared
        return prepared

    def table(self, using: str = "default") -> str:
        """The model's table name, quoted for the connection."""
        return self._prepare(connections[using])[3]

    def fetch(self, where: str, params: list, *, extra: dict[str, tuple[str, list]] | None = None,
              for_update: bool = False, using: str = "default") -> list:
        """Instances of the rows matching `where` (plain SQL over the model's table, `%s` placeholders).
        `extra`: name -> (SQL expression, its params), read in the same statement and set as attributes
        on each instance (as an annotation would be), unconverted."""
        conn = connections[using]
        names, converters, select, table = self._prepare(conn)
        extra = extra or {}
        columns = select + "".join(f", {sql}" for sql, _ in extra.values())
        sql = f"SELECT {columns} FROM {table} WHERE {where}"
        if for_update and conn.features.has_select_for_update:
            sql += " FOR UPDATE"
        all_params = [p for _, extra_params in extra.values() for p in extra_params] + list(params)
        with conn.cursor() as cursor:
            cursor.execute(sql, all_params)
            rows = cursor.fetchall()
        found = []
        n = len(names)
        for row in rows:
            values = list(row[:n])
            for i, chain in enumerate(converters):
                value = values[i]
                for convert, col in chain:
                    value = convert(value, col, conn)
                values[i] = value
            obj = self.model.from_db(conn.alias, names, values)
            for name, value in zip(extra, row[n:]):
                setattr(obj, name, value)
            found.append(obj)
        return found

    def insert(self, objs: list, using: str = "default") -> None:
        """INSERT new instances in one statement, as `save(force_insert=True)` / `bulk_create` would
        write them (each field's pre_save, e.g. auto_now_add, and database preparation), without
        sending model signals: only for models nothing listens to. A single row with an automatic
        primary key gets its id back."""
        if not objs:
            return
        conn = connections[using]
        meta = self.model._meta
        auto = meta.auto_field if meta.auto_field is not None and meta.auto_field.primary_key else None
        with_pk = auto is None or any(o.pk is not None for o in objs)
        shape = (conn.alias, len(objs), with_pk)
        if shape not in self._inserts:
            qn = conn.ops.quote_name
            fields = [f for f in meta.concrete_fields if f is not auto or with_pk]
            row = "(" + ", ".join(["%s"] * len(fields)) + ")"
            self._inserts[shape] = fields, (f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
                                            f"VALUES {', '.join([row] * len(objs))}")
        fields, sql = self._inserts[shape]
        params = [f.get_db_prep_save(f.pre_save(obj, True), conn) for obj in objs for f in fields]
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            if auto is not None and len(objs) == 1 and objs[0].pk is None:
                objs[0].pk = cursor.lastrowid
        for obj in objs:
            obj._state.adding, obj._state.db = False, conn.alias

    def insert_values(self, fields: list[str], rows: list[tuple], *, ignore_conflicts: bool = False,
                      using: str = "default") -> None:
        """INSERT rows given as database values (one tuple per row, in the order of `fields`, each
        value already what the column's `get_db_prep_save` gives) in one statement; with
        `ignore_conflicts`, a row that breaks a unique constraint is skipped, as `bulk_create(...,
        ignore_conflicts=True)` does. No model instances: for many small rows written in bulk, where
        building and preparing instances cost most of the write."""
        if not rows:
            return
        conn = connections[using]
        meta, qn = self.model._meta, conn.ops.quote_name
        columns = [meta.get_field(name) for name in fields]
        on_conflict = OnConflict.IGNORE if ignore_conflicts else None
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        sql = (f"{conn.ops.insert_statement(on_conflict=on_conflict)} {qn(meta.db_table)} "
               f"({', '.join(qn(f.column) for f in columns)}) VALUES {', '.join([row] * len(rows))} "
               f"{conn.ops.on_conflict_suffix_sql(columns, on_conflict, None, None)}")
        with conn.cursor() as cursor:
            cursor.execute(sql.rstrip(), [value for values in rows for value in values])

    def update(self, obj, fields: list[str], using: str = "default") -> int:
        """UPDATE these fields of one saved instance, as `save(update_fields=...)` writes them (pre_save,
        e.g. auto_now, and database preparation), without sending model signals: the caller tells
        whatever listens. Returns the number of rows changed."""
        conn = connections[using]
        shape = (conn.alias, tuple(fields))
        if shape not in self._updates:
            meta, qn = self.model._meta, conn.ops.quote_name
            chosen = [meta.get_field(name) for name in fields]
            sets = ", ".join(f"{qn(f.column)} = %s" for f in chosen)
            self._updates[shape] = chosen, f"UPDATE {qn(meta.db_table)} SET {sets} WHERE {qn(meta.pk.column)} = %s"
        chosen, sql = self._updates[shape]
        params = [f.get_db_prep_save(f.pre_save(obj, False), conn) for f in chosen]
        params.append(self.model._meta.pk.get_db_prep_value(obj.pk, conn))
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount
