import subprocess
import sys


def test_version_command_prints_the_package_version():
    import gdsim

    out = subprocess.run(
        [sys.executable, "-m", "gdsim.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"gdsim {gdsim.__version__}"
