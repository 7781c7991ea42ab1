import subprocess
import sys


def test_importing_the_client_does_not_load_tensorflow():
    # TF Serving's protos live inside the tensorflow package: the client imports them when
    # its first instance is made, so importing it stays light (a CLI's --help, type hints).
    probe = "import sys, serving.client; print(sorted(m for m in sys.modules if m.split('.')[0] == 'tensorflow'))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
