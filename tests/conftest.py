"""Test settings: 8 forced CPU devices (set before JAX starts), strict JAX, deterministic hypothesis, a private
cache for the feature classifier and the compiled programs (nothing written to the user's ~/.cache), and, under
pytest-xdist's workers, tests marked ``alone`` run while no other worker runs a test."""
import fcntl
import os
import tempfile
from pathlib import Path

_FLAG = "--xla_force_host_platform_device_count=8"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}".strip()

# One private cache for the whole session: pytest-xdist's workers inherit it from the controller, so a classifier
# one worker trains is read by the others (whole files only: genjax.eval.classifier writes them atomically).
os.environ["GENJAX_TEST_CACHE"] = os.environ.get("GENJAX_TEST_CACHE") or tempfile.mkdtemp(prefix="genjax-test-cache-")
os.environ["GENJAX_CACHE"] = os.environ["GENJAX_TEST_CACHE"]
# JAX's persistent compilation cache in the same place, so a program compiled once (same HLO, devices and options)
# is read, not compiled again, by the other workers and by the tests' subprocesses (scripts, kills and resumes):
# the same executable, so the same bits. Compiles under 0.2 s are not worth a file.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(os.environ["GENJAX_TEST_CACHE"]) / "jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

import jax  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
settings.register_profile(
    "genjax", deadline=None, max_examples=25, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("genjax")


@pytest.fixture(scope="session")
def digits():
    from genjax import data

    return data.load("digits")


@pytest.fixture(scope="session")
def tiny_config():
    """A small autoencoder config shared by the tests, so its compiled step is reused."""
    from genjax import autoencoder

    return autoencoder.Config(hidden_dims=(32,), latent_dim=4, batch_size=32)


@pytest.fixture(scope="session")
def tiny_gan_config():
    """A small MLP GAN config shared by the tests (constant learning rate), so its compiled step is reused."""
    from genjax import gan

    return gan.Config(latent_dim=4, hidden_dims=(16,), d_hidden_dims=(16,), batch_size=16, schedule="constant")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Under pytest-xdist, a test marked ``alone`` (processes of its own, timed bars) holds an exclusive lock on a
    file every other test holds shared, from its setup to its teardown (module fixtures included), so it does not
    share the cores with another worker's test."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield
        return
    with open(Path(os.environ["GENJAX_TEST_CACHE"]) / "alone.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if item.get_closest_marker("alone") else fcntl.LOCK_SH)
        yield


# The slowest files first (ranked by their seconds in a 2-worker run on the 2-core CPU, 2026-12-07), so that the
# workers, which take whole files in this order (pyproject: --dist=loadfile --no-loadscope-reorder), end on short
# files together instead of one worker running a long file alone at the end.
SLOWEST_FILES_FIRST = ("test_sweep.py", "test_train_script.py", "test_fit.py", "test_reliability.py", "test_faults.py",
                       "test_benchmarks.py", "test_gan.py", "test_compare_script.py", "test_vae.py", "test_nets.py",
                       "test_parallel.py", "test_sample_metrics.py", "test_dgn.py", "test_autoencoder.py")


def pytest_collection_modifyitems(items):
    """Order the files as :data:`SLOWEST_FILES_FIRST`, the others after them; a file's own order is kept."""
    rank = {name: i for i, name in enumerate(SLOWEST_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
