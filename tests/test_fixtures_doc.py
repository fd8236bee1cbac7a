"""docs/fixtures.md's example is a working fixture: it loads, and a dump of it loads back."""

import re
from pathlib import Path

from idp import fixtures
from users.models import User

DOC = Path(__file__).resolve().parent.parent / "docs" / "fixtures.md"


def test_the_documented_example_loads_and_round_trips(db, tmp_path):
    (example,) = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    path = tmp_path / "fedmock.yaml"
    path.write_text(example)
    fixtures.load_file(path, prune=True)
    dana = User.objects.get(username="dana")
    assert dana.check_password("dana")
    assert sorted(dana.attribute_values()["costCenter"]) == ["0042", "0043"]
    dumped = fixtures.dump()
    fixtures.load(dumped, source="dump", prune=True)
    assert fixtures.dump() == dumped
