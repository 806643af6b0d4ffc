"""Output targets: bad ones refused before any work, and writes that fail leave the old file intact."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nndl.errors import ConfigError, NndlError
from nndl.files.atomic import TEMP_MARK, atomic_output, check_output_file, check_output_folder, write_bytes_atomically
from nndl.files.models import check_model_target, save_model
from nndl.network import Network


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a small tmpfs (as root); yields a function taking mount options, unmounts at the end."""
    mounted = []

    def mount(options: str) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root; the unprivileged case is covered by permission bits")
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], check=True)
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", str(point)], check=False)


def test_bad_file_targets_are_refused_before_work(tmp_path):
    (tmp_path / "a-file").write_text("x")
    os.symlink(tmp_path / "elsewhere", tmp_path / "link.npz")
    cases = {
        "": "empty file name",
        str(tmp_path): "is a folder",
        str(tmp_path / "a-file" / "m.npz"): "a-file is a file, not a folder",
        str(tmp_path / "missing" / "m.npz"): "does not exist; create it first",
        str(tmp_path / "link.npz"): "symbolic link",
        "/dev/null": "device, FIFO or socket",
    }
    for target, message in cases.items():
        with pytest.raises(NndlError, match=message):
            check_output_file(target, "--save")
    assert check_output_file(tmp_path / "new.npz", "--save") == tmp_path / "new.npz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "link.npz"]  # the probe left nothing


def test_bad_folder_targets_are_refused_before_work(tmp_path):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(NndlError, match="is a file, not a folder"):
        check_output_folder(tmp_path / "a-file", "--out")
    with pytest.raises(NndlError, match="a-file is a file"):
        check_output_folder(tmp_path / "a-file" / "sub", "--out")
    with pytest.raises(NndlError, match="already exists"):
        check_output_folder(tmp_path, "--out", must_be_new=True)
    with pytest.raises(NndlError, match="empty folder name"):
        check_output_folder("", "--out")
    assert check_output_folder(tmp_path / "new" / "deeper", "--out", must_be_new=True) == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()


def test_model_targets_need_a_known_format_before_training(tmp_path):
    relu = Network([4, 3, 2], activation="relu").describe()
    with pytest.raises(ConfigError, match=r"name a \.npz file"):
        check_model_target(tmp_path / "model.pkl")
    with pytest.raises(ConfigError, match="sigmoid networks"):
        check_model_target(tmp_path / "model.json", relu)
    assert check_model_target(tmp_path / "model.npz", relu) == tmp_path / "model.npz"
    assert check_model_target(tmp_path / "model.json", Network([4, 3, 2]).describe()) == tmp_path / "model.json"


def test_read_only_folder_is_refused_early_and_at_write_time(tmpfs):
    folder = tmpfs("size=64k,ro")
    with pytest.raises(NndlError, match="Read-only file system"):
        check_output_file(folder / "m.npz", "--save")
    with pytest.raises(NndlError, match="Read-only file system"):
        check_output_folder(folder / "runs", "--out")
    with pytest.raises(NndlError, match=r"not written \(Read-only file system\)|cannot write there"):
        write_bytes_atomically(folder / "m.npz", b"data")


def test_a_full_disk_leaves_the_previous_file_and_no_temporary(tmpfs):
    folder = tmpfs("size=256k")
    target = folder / "model.npz"
    save_model(Network([4, 3, 2], seed=0), target)
    before = target.read_bytes()
    with pytest.raises(NndlError) as error:
        save_model(Network([400, 400, 10], seed=1), target)  # 660 kB: more than the disk holds
    assert "No space left on device" in str(error.value) and "previous file is intact" in str(error.value)
    assert "\n" not in str(error.value)
    assert target.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["model.npz"]


def test_symlinks_and_devices_are_never_replaced(tmp_path):
    real = tmp_path / "real.npz"
    real.write_bytes(b"keep me")
    link = tmp_path / "link.npz"
    os.symlink(real, link)
    for target in (link, Path("/dev/null")):
        with pytest.raises(NndlError, match="symbolic link|device"):
            write_bytes_atomically(target, b"new")
    assert link.is_symlink() and real.read_bytes() == b"keep me"
    assert Path("/dev/null").is_char_device()


def test_a_symlink_appearing_during_the_write_is_not_replaced(tmp_path):
    target = tmp_path / "m.npz"
    with pytest.raises(NndlError, match="symbolic link"):
        with atomic_output(target) as handle:
            handle.write(b"data")
            os.symlink(tmp_path / "other", target)
    assert target.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_temporaries_of_a_killed_write_are_swept_on_the_next_write(tmp_path):
    script = (f"import os, sys; sys.path.insert(0, {str(Path(__file__).parents[1] / 'src')!r})\n"
              "from nndl.files.atomic import atomic_output\n"
              f"with atomic_output({str(tmp_path / 'm.npz')!r}) as h:\n"
              "    h.write(b'half'); h.flush(); os.kill(os.getpid(), 9)\n")
    subprocess.run([sys.executable, "-c", script], check=False)
    stale = [p.name for p in tmp_path.iterdir()]
    assert len(stale) == 1 and stale[0].startswith(".m.npz" + TEMP_MARK)  # recognisable as nndl's
    write_bytes_atomically(tmp_path / "other.json", b"{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.json"]
