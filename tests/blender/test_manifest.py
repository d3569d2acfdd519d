"""blender_manifest.toml passes Blender's own validator and builds a zip with the right files."""

import shutil
import tomllib
import zipfile

import pytest

# Blender's validator and builder ship inside the bpy wheel.
pytest.importorskip("bpy")

# Folders and files that exist only for development; shipping them would bloat
# the zip (.venv holds torch) or leak training data. evaluation/ (the harness behind
# `ldr2hdr eval`) is a development tool too: Blender never runs it.
FORBIDDEN_PREFIXES = (
    "tests/", "training/", "evaluation/", ".venv/", ".ci/", ".git", ".pytest_cache/", "dist/", "build/",
)
FORBIDDEN_PARTS = ("__pycache__/", ".egg-info/")
FORBIDDEN_SUFFIXES = (".pyc", ".zip", "pyproject.toml")


def _manifest(source_dir):
    return tomllib.loads((source_dir / "blender_manifest.toml").read_text(encoding="utf-8"))


def test_manifest_id_and_version_match_the_python_package(source_dir):
    manifest = _manifest(source_dir)
    pyproject = tomllib.loads((source_dir / "pyproject.toml").read_text(encoding="utf-8"))
    assert manifest["id"] == pyproject["project"]["name"] == "ldr2hdr"
    assert manifest["version"] == pyproject["project"]["version"]
    assert manifest["type"] == "add-on"


def test_validator_accepts_source(blender_ext, source_dir, valid_tags_file):
    result = blender_ext("validate", "--valid-tags", str(valid_tags_file), str(source_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('tags = ["Compositing"', 'tags = ["Not A Blender Tag"', "tag"),
        ('tagline = "', 'tagline = "' + "Much too long " * 5, "tagline"),
        ('HDR images"', 'HDR images."', "files"),
    ],
    ids=["unknown-tag", "tagline-too-long", "permission-ends-with-period"],
)
def test_validator_rejects_broken_manifest(
    blender_ext, source_dir, valid_tags_file, tmp_path, old, new, field
):
    # Guards the test above: the validator really checks tags, lengths and punctuation.
    text = (source_dir / "blender_manifest.toml").read_text(encoding="utf-8")
    assert old in text
    (tmp_path / "blender_manifest.toml").write_text(text.replace(old, new), encoding="utf-8")
    shutil.copy(source_dir / "__init__.py", tmp_path / "__init__.py")
    result = blender_ext("validate", "--valid-tags", str(valid_tags_file), str(tmp_path))
    assert result.returncode != 0, result.stdout
    assert field in result.stdout + result.stderr


def test_validator_accepts_built_package(blender_ext, built_package, valid_tags_file):
    result = blender_ext("validate", "--valid-tags", str(valid_tags_file), str(built_package))
    assert result.returncode == 0, result.stdout + result.stderr


def test_built_package_contents(built_package, source_dir):
    manifest = _manifest(source_dir)
    assert built_package.name == f"{manifest['id']}-{manifest['version']}.zip"
    with zipfile.ZipFile(built_package) as archive:
        names = set(archive.namelist())

    shipped = {
        path.relative_to(source_dir).as_posix()
        for pattern in ("operators/**/*.py", "nodes/**/*.py", "inference/**/*.py", "weights/*")
        for path in source_dir.glob(pattern)
        if path.is_file() and "__pycache__" not in path.parts and not path.name.startswith(".")
    }
    assert "inference/__init__.py" in shipped
    required = {"blender_manifest.toml", "__init__.py", "preferences.py"} | shipped
    assert required <= names, sorted(required - names)

    leaked = sorted(
        name
        for name in names
        if name.startswith(FORBIDDEN_PREFIXES)
        or any(part in name for part in FORBIDDEN_PARTS)
        or name.endswith(FORBIDDEN_SUFFIXES)
    )
    assert leaked == []


@pytest.mark.parametrize("folder", ["evaluation", "training"])
def test_evaluation_and_training_code_is_not_shipped(built_package, source_dir, folder):
    # The harness, metrics, photo synthesis and training scripts are development tools:
    # the manifest excludes them by name, and the zip built from it holds none of their files.
    assert any((source_dir / folder).glob("*.py")), f"{folder}/ has moved: update this test"
    assert f"/{folder}/" in _manifest(source_dir)["build"]["paths_exclude_pattern"]
    with zipfile.ZipFile(built_package) as archive:
        leaked = [name for name in archive.namelist() if name.startswith(f"{folder}/")]
    assert leaked == []
