"""Suite-wide set-up: isolate the user's real config, data and keyring, keep entry-point
discovery off unless a test asks for it, and report by name the PostgreSQL
tests that could not run.

`make test` runs the suite in pytest-xdist worker processes. Each worker imports this
file on its own, so everything below (the sandbox, the environment, the session
brokers) is per worker: no two workers share a config, data dir, home, runtime dir or
broker. Throw-away PostgreSQL schemas and databases carry a random name."""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import tempfile
from collections.abc import Iterator

_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
_SANDBOX = tempfile.mkdtemp(prefix=f"smartiot-tests-{_WORKER}-")
atexit.register(shutil.rmtree, _SANDBOX, ignore_errors=True)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["SMARTIOT_ENTRY_POINTS"] = "0"
os.environ["SMARTIOT_CONFIG"] = os.path.join(_SANDBOX, "config", "config.toml")
os.environ["SMARTIOT_DATA_DIR"] = os.path.join(_SANDBOX, "data")
os.environ.pop("SMARTIOT_DISABLE_PLUGINS", None)
os.environ.pop("SMARTIOT_PROFILE", None)
os.environ.pop("SMARTIOT_ROLE", None)
# No OS keyring, as on a CI machine: secrets (code-signing passphrases, broker
# passwords) go to core.secrets' encrypted file in the sandbox's data dir, never
# to the developer's own keyring.
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
os.environ.pop("SMARTIOT_SECRETS_PASSPHRASE", None)
os.environ.pop("SMARTIOT_SECRETS_BACKEND", None)
os.environ["XDG_DATA_HOME"] = os.path.join(_SANDBOX, "xdg-data")
# Defaults that fall back on the home directory (an export dialog's suggested path,
# a page's saved filters) and the per-user runtime directory where embedded brokers
# announce themselves (simulator.local_brokers, simulator.broker_guard) stay in the
# sandbox too: never in the developer's home, never seen by another worker.
for _name in ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME",
              "XDG_RUNTIME_DIR"):
    os.environ[_name] = os.path.join(_SANDBOX, _name.lower())
    os.makedirs(os.environ[_name], mode=0o700)
os.environ.pop("SMARTIOT_CODESIGN_PASSPHRASE", None)

PG_SKIP_PREFIX = "SMARTIOT_TEST_PG_URL not set"


# Fuzz case counts arrive with each test's report (tests/fuzz/conftest.py), so the
# total is right when pytest-xdist runs the tests in worker processes.
_FUZZ_CASES: dict[str, int] = {}


def pytest_runtest_logreport(report):  # type: ignore[no-untyped-def]
    if report.when != "teardown":
        return
    for key, value in report.user_properties:
        if key == "fuzz_cases":
            for name, n in value.items():
                _FUZZ_CASES[name] = _FUZZ_CASES.get(name, 0) + n


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    if _FUZZ_CASES:
        total = sum(_FUZZ_CASES.values())
        parts = ", ".join(f"{k} {v:,}" for k, v in sorted(_FUZZ_CASES.items()))
        terminalreporter.write_line(f"fuzz cases run: {total:,} ({parts})")
    not_run = [
        report.nodeid
        for report in terminalreporter.stats.get("skipped", [])
        if PG_SKIP_PREFIX in str(report.longrepr)
    ]
    if not not_run:
        return
    terminalreporter.section("PostgreSQL tests NOT RUN", sep="=", yellow=True, bold=True)
    terminalreporter.write_line(
        f"{len(not_run)} store tests did not run on PostgreSQL because SMARTIOT_TEST_PG_URL "
        "is not set (e.g. postgresql://postgres@127.0.0.1:5432/test):"
    )
    for nodeid in not_run:
        terminalreporter.write_line(f"  NOT RUN {nodeid}")


# ---------------------------------------------------------------- parallel runs
import pytest  # noqa: E402

# Directories whose tests form one work unit in parallel runs, so they run one after
# another on one worker, never two at a time. Each chaos test drives a fleet through a
# broker's kill -9, a database outage or network flaps and checks that nothing the
# broker accepted is lost; two at once starve the hubs of CPU and test the machine.
_ONE_AT_A_TIME = {"tests/chaos/": "chaos"}


def _work_unit(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    for prefix, group in _ONE_AT_A_TIME.items():
        if path.startswith(prefix):
            return group
    return path


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):  # type: ignore[no-untyped-def]
    """`make test` runs `-n 3 --dist loadfile`: a work unit is a whole test file
    (module-scoped hubs, brokers and the first-hour walk-through are built once, in
    file order, as in a serial run), and each _ONE_AT_A_TIME directory is one unit.
    (xdist's own ``xdist_group`` marker does not group with pytest 9: it renames
    nodeids, which pytest 9 no longer allows.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FileOrGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _work_unit(nodeid)

    config.option.loadscopereorder = False  # the order comes from the hook below
    return FileOrGroupScheduling(config, log)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    """In parallel runs, hand out the one-at-a-time groups first (few tests, minutes
    long), then the files with the most tests (xdist's own order), so no long unit
    is left for the end while the other workers idle. Serial runs keep file order."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    sizes: dict[str, int] = {}
    for item in items:
        unit = _work_unit(item.nodeid)
        sizes[unit] = sizes.get(unit, 0) + 1

    def order(item):  # type: ignore[no-untyped-def]
        unit = _work_unit(item.nodeid)
        return (0 if unit in _ONE_AT_A_TIME.values() else 1, -sizes[unit])

    items.sort(key=order)  # stable: tests keep their order within a file


# ---------------------------------------------------------------- brokers

from simulator.broker import EmbeddedBroker, find_mosquitto  # noqa: E402


# One broker per test module, not per session: retained statuses, persistent sessions
# and queued messages a module leaves behind must not reach another module's hub (a
# retained "online" registers a device before its simulator subscribed). Under
# pytest-xdist the set of modules sharing a worker changes from run to run, so a
# session broker made results depend on scheduling. Starting mosquitto takes ~50 ms.
@pytest.fixture(scope="module")
def mosquitto_broker():
    """A private mosquitto on a free loopback port. Missing mosquitto is a failure,
    not a skip: `make test` installs it, and broker tests must never vanish silently."""
    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed; run `make test` (it installs it) or "
                    "`sudo apt-get install mosquitto mosquitto-clients`")
    with EmbeddedBroker(prefer="mosquitto", anonymous=True) as broker:
        yield broker


@pytest.fixture(scope="module")
def amqtt_broker():
    """The in-process broker used when mosquitto is not installed."""
    with EmbeddedBroker(prefer="amqtt", anonymous=True) as broker:
        yield broker


@pytest.fixture(params=["mosquitto", "amqtt"])
def any_broker(request):
    return request.getfixturevalue(f"{request.param}_broker")


# ---------------------------------------------------------------- third-party plugins
EXAMPLES = __import__("pathlib").Path(__file__).resolve().parent / "example_plugins"


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory):
    """pip-installs the example plugins (real wheels, real entry points) into a
    private site directory."""
    import subprocess
    import sys

    from tests.wheelbuilder import build_plugin_wheel

    wheels = tmp_path_factory.mktemp("wheels")
    site = tmp_path_factory.mktemp("site")
    good = build_plugin_wheel(EXAMPLES / "smartiot_example_plugin", "smartiot-example-plugin",
                              "1.2.3", "example = smartiot_example_plugin", wheels)
    broken = build_plugin_wheel(EXAMPLES / "smartiot_broken_plugin", "smartiot-broken-plugin",
                                "0.1.0", "broken = smartiot_broken_plugin", wheels)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--target", str(site), str(good), str(broken)],
        check=True, timeout=300,
    )
    return site


@pytest.fixture
def installed_plugins(plugin_site, monkeypatch):
    """Makes the pip-installed example plugins importable in this process."""
    import importlib
    import sys

    monkeypatch.syspath_prepend(str(plugin_site))
    importlib.invalidate_caches()
    yield plugin_site
    for name in ("smartiot_example_plugin", "smartiot_broken_plugin"):
        sys.modules.pop(name, None)


@pytest.fixture(autouse=True)
def _qt_cycles_collected_on_the_test_thread(request: pytest.FixtureRequest) -> Iterator[None]:
    """In a test with Qt widgets, garbage cycles are collected at its end on
    this (the GUI) thread, not whenever a worker thread allocates: a cycle
    holding Qt objects freed on a page's background job crashed a test worker
    with SIGSEGV in Qt's event processing (console/gui_thread_gc.py says why;
    the console itself collects on its GUI thread)."""
    if not {"qtbot", "qapp"} & set(request.fixturenames):
        yield
        return
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.collect()
        if was_enabled:
            gc.enable()
