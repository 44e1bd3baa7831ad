"""`kill -9` at random moments always leaves a loadable state."""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np

from sn1.validator import state as state_mod

WRITER = r"""
import sys, numpy as np
from sn1.validator import state
folder = sys.argv[1]
st = state.load(folder) or state.State(scores=np.zeros(256), hotkeys=[f"hk{i}" for i in range(256)])
while True:
    st.step += 1
    st.scores = np.full(256, st.step / 1e6)
    state.save(folder, st)
"""


def test_state_survives_repeated_kill_9(tmp_path):
    folder = str(tmp_path / "v")
    rng = random.Random(7)
    last_step = 0
    for _ in range(15):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, folder])
        time.sleep(0.4 + rng.random() * 0.4)   # let it import, then kill mid-write
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        st = state_mod.load(folder)
        if st is None:                          # killed before its first save
            continue
        assert st.step >= last_step             # never goes back
        assert np.allclose(st.scores, st.step / 1e6)   # scores from the same save as the step
        assert len(st.hotkeys) == 256
        last_step = st.step
    assert last_step > 0
    # Torn temp files from the kills are cleaned up by the next load.
    assert not [p for p in os.listdir(folder) if p.startswith(".tmp-")]
