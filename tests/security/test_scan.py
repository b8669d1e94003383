"""The scan `make test` runs (issue 11, "the suite that keeps it so"):

1. no SQL built from strings: an AST check over core, plugins, console and
   simulator finds every f-string, concatenation, ``%`` or ``.format``/``.join``
   handed to ``text(...)``, ``execute(...)`` or ``exec_driver_sql(...)``
   (directly or through a variable assigned in the same function); the few
   justified cases are listed below, each with its reason, and an entry that
   no longer matches anything fails too, so the list cannot rot;
2. no secrets in logs or files: a short real run (secrets stored, firmware
   added and signed, the hub with the demo fleet on the embedded broker, the
   audit trail verified) with debug logging, then every byte it printed and
   every file it wrote in the config and data dirs is searched for each
   secret value, including the ones the product generated itself.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("core", "plugins", "console", "simulator")
SINKS = frozenset({"text", "execute", "exec_driver_sql", "executemany", "executescript"})

# (file, text of the argument) -> why building this SQL string is safe.
ALLOWED = {
    ("core/store/engine.py", "f'PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}'"):
        "an integer module constant; SQLite PRAGMAs take no bound parameters",
    ("core/store/telemetry.py", "f'PRAGMA wal_autocheckpoint = {pages}'"):
        "an int clamped between two integer constants (a batch's row count); "
        "SQLite PRAGMAs take no bound parameters",
    ("core/store/migrate.py", "f'SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})'"):
        "an integer module constant naming the migration lock",
    ("core/store/telemetry.py",
     'f"SELECT device_id, until_ms FROM telemetry_minute_mark WHERE metric = {p} AND '
     'device_id IN ({\', \'.join([p] * len(part))})"'):
        "only the driver's placeholder ('?' or '%s') repeated once per bound device id; "
        "every value is a bound parameter",
    # minutes_in() returns fixed SQL text around what it is given, here named
    # placeholders: the minutes, like every other value, are bound parameters.
    ("core/store/telemetry.py",
     "_FOLD.format(minutes=minutes_in(conn.dialect.name, ':mlo', ':mhi'), value=value, "
     "sets=sets)"):
        "the dialect's name picks one of minutes_in's two fixed texts, around named "
        "placeholders; value and sets are _column_of's text around integers (set ids and "
        "column numbers read from the database, cast with int()); every value is bound",
    # A row per message (migration 0018): column lists and placeholders are
    # built from the integer COLUMNS; a metric's column is picked by ints read
    # from telemetry_metric_slot (cast with int() where the SQL is made).
    ("core/store/telemetry.py", "_SQLITE_INSERT"):
        "a module constant: fixed text with ?N placeholders numbered from the integer COLUMNS",
    ("core/store/telemetry.py", "_PG_STAGING"):
        "a module constant: fixed column definitions, their names from the integer COLUMNS",
    ("core/store/telemetry.py", "_PG_MERGE"):
        "a module constant: fixed column names, numbered from the integer COLUMNS",
    ("core/store/telemetry.py", "_SLOTS_OF.format(p=p)"):
        "only the driver's placeholder ('?' or '%s'); the set id is a bound parameter",
    ("core/store/telemetry.py", "_SETS_OF_METRIC.format(p=p)"):
        "only the driver's placeholder; the metric is a bound parameter",
    ("core/store/telemetry.py", "_RAW_BLOBS_PG.format(value=column, sets=sets)"):
        "_column_of's text around integers (set ids and column numbers read from the "
        "database and cast with int()); the device, times and minutes are bound parameters",
    ("core/store/migrations/versions/0018_telemetry_message_rows.py", "slots"):
        "fixed text with the driver's placeholders",
    ("core/store/migrations/versions/0018_telemetry_message_rows.py", "insert"):
        "fixed text: column names and placeholders counted from the integer COLUMNS",
    ("core/store/migrations/versions/0018_telemetry_message_rows.py", "_VIEW"):
        "a module constant: the view's fixed text, its CASE numbered from the integer COLUMNS",

}


def _dynamic(node: ast.AST) -> bool:
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        return True
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("format", "join"))


def _sink_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    if isinstance(call.func, ast.Name):
        return call.func.id
    return None


def find_string_sql(source: str) -> list[tuple[int, str]]:
    """(line, argument) of every SQL sink called with a string built at run time."""
    tree = ast.parse(source)
    found: set[tuple[int, str]] = set()
    scopes = [n for n in ast.walk(tree)
              if isinstance(n, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef)]
    for scope in scopes:
        assigned: dict[str, list[ast.AST]] = {}
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        assigned.setdefault(target.id, []).append(node.value)
            elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
                assigned.setdefault(node.target.id, []).append(
                    ast.BinOp(node.target, node.op, node.value))
        for node in ast.walk(scope):
            if not (isinstance(node, ast.Call) and _sink_name(node) in SINKS and node.args):
                continue
            arg = node.args[0]
            built = _dynamic(arg) or (isinstance(arg, ast.Name)
                                      and any(_dynamic(v) for v in assigned.get(arg.id, ())))
            if built:
                found.add((node.lineno, ast.unparse(arg)))
    return sorted(found)


def test_the_check_finds_what_it_should() -> None:
    """The detector itself: each way of building SQL from strings is caught,
    bound parameters and constants are not."""
    bad = '''
def f(conn, name, table):
    conn.execute(text(f"SELECT * FROM devices WHERE name = '{name}'"))
    conn.execute("DELETE FROM " + table)
    conn.exec_driver_sql("SELECT %s" % name)
    q = "SELECT * FROM {}".format(table)
    conn.execute(q)
    sql = "SELECT 1"
    sql += " WHERE x = " + name
    conn.execute(text(sql))
'''
    assert [line for line, _ in find_string_sql(bad)] == [3, 4, 5, 7, 10]
    good = '''
def g(conn, name):
    conn.execute(text("SELECT * FROM devices WHERE name = :name"), {"name": name})
    conn.execute(select(table).where(table.c.name == name))
    conn.exec_driver_sql("BEGIN IMMEDIATE")
'''
    assert find_string_sql(good) == []


def test_no_sql_is_built_from_strings() -> None:
    offences, used = [], set()
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for line, arg in find_string_sql(path.read_text(encoding="utf-8")):
                if (rel, arg) in ALLOWED:
                    used.add((rel, arg))
                else:
                    offences.append(f"{rel}:{line}: SQL built from a string: {arg}")
    assert not offences, ("use bound parameters (text(':name') with a dict, or SQLAlchemy "
                          "expressions); if a case is truly safe, add it to ALLOWED with "
                          "the reason:\n" + "\n".join(offences))
    stale = set(ALLOWED) - used
    assert not stale, f"ALLOWED entries that match nothing any more: {sorted(stale)}"


# ---------------------------------------------------------------- secrets after a real run
SECRETS_PASSPHRASE = "file-pass-Qx7!vL2#secrets"
BROKER_PASSWORD = "broker-pw-Zk4@tM9$team"
DATABASE_PASSWORD = "db-pw-Hn3%rW8&lab"


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("SMARTIOT_CODESIGN_PASSPHRASE", "SMARTIOT_ROLE", "SMARTIOT_USER",
                 "SMARTIOT_SECRETS_BACKEND"):
        env.pop(name, None)
    env.update({
        "SMARTIOT_CONFIG": str(tmp / "config" / "config.toml"),
        "SMARTIOT_DATA_DIR": str(tmp / "data"),
        # a headless machine: secrets go to the encrypted file, unlocked by a passphrase
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "SMARTIOT_SECRETS_PASSPHRASE": SECRETS_PASSPHRASE,
        "QT_QPA_PLATFORM": "offscreen",
    })
    return env


def _run(tmp: Path, *args: str, stdin: str = "") -> str:
    result = subprocess.run([sys.executable, "-m", "console.cli", "-v", *args],
                            input=stdin, capture_output=True, text=True, env=_env(tmp),
                            timeout=180, cwd=ROOT)
    assert result.returncode == 0, f"smartiot {' '.join(args)}:\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


def _run_hub(tmp: Path) -> str:
    """``smartiot hub --demo`` until the demo fleet's readings are stored and the
    first alerts are raised, then Ctrl+C (the hub drains and stops)."""
    log = tmp / "hub.log"
    with log.open("w") as out:
        hub = subprocess.Popen([sys.executable, "-m", "console.cli", "-v", "hub", "--demo",
                                "--status-every", "1"], stdout=out, stderr=subprocess.STDOUT,
                               env=_env(tmp), cwd=ROOT)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and hub.poll() is None:
                if "stored" in log.read_text(errors="replace"):
                    break
                time.sleep(0.5)
            assert hub.poll() is None, log.read_text()[-3000:]
            hub.send_signal(signal.SIGINT)
            hub.wait(timeout=90)
        finally:
            if hub.poll() is None:
                hub.kill()
                hub.wait()
    return log.read_text(errors="replace")


def _generated_secrets(tmp: Path) -> dict[str, str]:
    """Secrets the product made for itself during the run, read back through
    the secret store exactly as the product reads them."""
    code = ("import json; from core import secrets; print(json.dumps({n: secrets.get_secret(n)"
            " for n in secrets.list_secrets()}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=_env(tmp), timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return {k: v for k, v in json.loads(result.stdout.strip().splitlines()[-1]).items() if v}


def test_no_secret_reaches_a_log_or_a_file_after_a_real_run(tmp_path: Path) -> None:
    output = [
        _run(tmp_path, "secrets", "set", "broker.password", stdin=BROKER_PASSWORD + "\n"),
        _run(tmp_path, "secrets", "set", "lab.database", stdin=DATABASE_PASSWORD + "\n"),
    ]
    image = tmp_path / "pump-1.1.0.bin"
    image.write_bytes(b"\x7fpump firmware " * 4000)
    output.append(_run(tmp_path, "firmware", "add", str(image), "--version", "1.1.0",
                       "--type", "pump"))
    output.append(_run_hub(tmp_path))
    output.append(_run(tmp_path, "audit", "verify"))
    output.append(_run(tmp_path, "audit", "export", "--format", "json"))
    output.append(_run(tmp_path, "config", "show"))

    generated = _generated_secrets(tmp_path)
    assert {"codesign-passphrase", "audit.checkpoint-key", "broker.password",
            "lab.database"} <= set(generated), sorted(generated)
    known = {"the secrets file passphrase": SECRETS_PASSPHRASE,
             **{f"secret {name!r}": value for name, value in generated.items()}}

    written = [p for d in (tmp_path / "config", tmp_path / "data") if d.exists()
               for p in d.rglob("*") if p.is_file()]
    assert any(p.name == "smartiot.db" for p in written), written  # the run really wrote
    leaks = []
    for what, value in known.items():
        needle = value.encode()
        for i, text in enumerate(output):
            if value in text:
                leaks.append(f"{what} printed by run #{i}")
        for path in written:
            if needle in path.read_bytes():
                leaks.append(f"{what} in {path.relative_to(tmp_path)}")
    assert not leaks, "\n".join(leaks)
