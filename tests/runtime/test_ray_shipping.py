"""The actor's code reaches nodes by value: a node needs Ray and Python, not Podium (no cluster)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.ray_cluster import ray_available

pytestmark = pytest.mark.skipif(not ray_available(), reason="ray is not installed (scripts/ci-ray.sh installs it)")

# Loads the pickled actor class where `import podium` fails, and reads a log with it.
LOAD = """
import sys
class NoPodium:
    def find_spec(self, name, path=None, target=None):
        if name == "podium" or name.startswith("podium."):
            raise ImportError("podium is not installed on this node")
sys.meta_path.insert(0, NoPodium())
from ray import cloudpickle
cls = cloudpickle.loads(sys.stdin.buffer.read())
actor = cls.__new__(cls)
actor.dir, actor.refused = sys.argv[1], {"exit_code": 0, "detail": "done"}
print(actor.tail(2)["lines"], actor.read(None)["lines"])
"""


def test_the_actor_class_needs_no_podium_on_the_node(tmp_path: Path) -> None:
    from ray import cloudpickle

    from podium.runtime import ray_driver
    from podium.runtime.ray_actor import ReplicaActor

    assert ray_driver.SUPERVISOR_SOURCE.startswith('"""Per-replica supervisor')  # written on the node
    (tmp_path / "output.log").write_text("one\ntwo\nthree\n")
    ray_driver.ship_by_value()  # what the driver does before creating actors
    blob = cloudpickle.dumps(ReplicaActor)
    out = subprocess.run(
        [sys.executable, "-c", LOAD, str(tmp_path)], input=blob, capture_output=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    assert out.stdout.decode().strip() == "['two', 'three'] ['one', 'two', 'three']"
