from __future__ import annotations

import pytest

from lutarterial.imaging.synthetic import write_synthetic_patient


@pytest.fixture(scope="session")
def synth(tmp_path_factory):
    return write_synthetic_patient(tmp_path_factory.mktemp("synth"), seed=7, shape=(40, 56, 56),
                                   voxel_mm=(6.5, 6.5, 6.0), n_lesions=4)


@pytest.fixture(scope="session")
def synth_sameday(tmp_path_factory):
    """IAH PET 3 h after the IV injection: the IV residual is in the IAH image."""
    return write_synthetic_patient(tmp_path_factory.mktemp("same"), seed=3, shape=(32, 48, 48),
                                   voxel_mm=(7.0, 7.0, 7.0), n_lesions=3, iah_delay_h=3.0, spect_times_h=())
