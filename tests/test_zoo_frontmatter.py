"""Reading zoo readme front matter: the forms zoo readmes use, and clear errors otherwise."""

import pytest

from zoo.errors import ZooError
from zoo.frontmatter import parse_readme, render_readme

SHA1 = "9116a64c0fbe4459d18f4bb6b56d647b63920377"
PLAIN = f"""---
name: BAIR/BVLC AlexNet Model
caffemodel: bvlc_alexnet.caffemodel
caffemodel_url: http://127.0.0.1/bvlc_alexnet.caffemodel
license: unrestricted
sha1: {SHA1}
caffe_commit: 709dc15af4a06bebda027c1eb2b3f3e3375d5077
---

This model is a replication of AlexNet.
"""


def _readme(tmp_path, text):
    path = tmp_path / "readme.md"
    path.write_text(text)
    return path


def test_plain_scalars_as_in_caffes_own_zoo(tmp_path):
    fields = parse_readme(_readme(tmp_path, PLAIN))
    assert fields["name"] == "BAIR/BVLC AlexNet Model"
    assert fields["sha1"] == SHA1
    assert fields["license"] == "unrestricted"


def test_round_trip_of_quoted_values(tmp_path):
    fields = {"name": 'odd "name": with # and \'quotes\'', "caffemodel": "m.caffemodel",
              "caffemodel_url": "file:///tmp/m.caffemodel", "sha1": "0" * 40,
              "description": "ünïcode, colons: yes"}
    readme = _readme(tmp_path, render_readme(fields, "body"))
    assert parse_readme(readme) == fields
    assert parse_readme(tmp_path) == fields          # the folder works as well


@pytest.mark.parametrize("text, message", [
    ("name: x\n" + PLAIN, r"line 1 must be '---'"),
    (PLAIN.replace("---\n\nThis", "\nThis"), r"never closed by a '---' line"),
    (PLAIN.replace("license: unrestricted", "license unrestricted"),
     r"readme\.md:5: expected 'key: value', found 'license unrestricted'"),
    (PLAIN.replace("license: unrestricted", "sha1: " + SHA1), r":6: key 'sha1' appears twice"),
    (PLAIN.replace(f"sha1: {SHA1}\n", ""), r"front matter lacks sha1"),
    (PLAIN.replace(SHA1, SHA1[:-1]), r"sha1 '9116a64c.*' is not 40 lower-case hex digits"),
    (PLAIN.replace("caffemodel: bvlc", "caffemodel: ../../bvlc"), r"must be a file name"),
    (PLAIN.replace("http://127.0.0.1/", "ftp://host/"), r"is not an http\(s\) or file URL"),
    (PLAIN.replace("license: unrestricted", 'license: "open'), r":5: unterminated"),
    (PLAIN.replace("license: unrestricted", "license: [a, b]"), r"nested or block YAML"),
])
def test_corrupted_front_matter_is_a_clear_error(tmp_path, text, message):
    with pytest.raises(ZooError, match=message):
        parse_readme(_readme(tmp_path, text))


def test_no_readme(tmp_path):
    with pytest.raises(ZooError, match="no readme.md"):
        parse_readme(tmp_path)
