"""mu at 208 keV from the NIST table: hand-computed values."""

import math

import numpy as np
import pytest

from pvc_core.phantom.materials import MATERIALS, mu_208kev, mu_lookup


def _loglog(mu200, mu300, e=208.4):
    t = math.log(e / 200) / math.log(1.5)
    return math.exp((1 - t) * math.log(mu200) + t * math.log(mu300))


def test_water_and_soft_tissue_by_hand():
    assert mu_208kev("water") == pytest.approx(_loglog(0.1370, 0.1186) * 1.00, rel=1e-12)
    assert mu_208kev("water") == pytest.approx(0.1350, abs=5e-5)
    assert mu_208kev("soft_tissue") == pytest.approx(_loglog(0.1358, 0.1176) * 1.05, rel=1e-12)
    assert mu_208kev("cortical_bone") == pytest.approx(_loglog(0.1309, 0.1113) * 1.92, rel=1e-12)
    assert mu_208kev("lung") == pytest.approx(_loglog(0.1359, 0.1177) * 0.26, rel=1e-12)


def test_ordering_and_outside():
    mu = {k: mu_208kev(k) for k in MATERIALS}
    assert mu["outside"] == 0.0
    order = ["air", "lung", "adipose", "water", "brain", "soft_tissue", "spongiosa", "cortical_bone"]
    assert [mu[m] for m in order] == sorted(mu[m] for m in order)


def test_lookup_marks_unknown_labels():
    table = mu_lookup({0: "outside", 3: "water"})
    assert table[0] == 0 and table[3] == np.float32(mu_208kev("water")) and np.isnan(table[1])
    with pytest.raises(KeyError, match="unknown material"):
        mu_208kev("unobtainium")
